//! Small PDFs written by hand, for the PDF import's tests and benchmark: pages of text in
//! Helvetica (one of the 14 fonts every PDF reader has), a picture on any page, a title, an
//! `Encrypt` entry whose password is not empty, or a page whose drawing is compressed and
//! unpacks to any size (a decompression bomb). Byte offsets are counted as written, so
//! the cross-reference table is exact and a reader need not repair the file.

/// What to write; `pages[i]` is the lines of text of page `i + 1`.
pub struct PdfSpec {
    pub title: Option<String>,
    pub pages: Vec<Vec<String>>,
    /// Pages (from 1) showing a 2×2 picture: red and green above, blue and black below, at
    /// 400..600 × 100..300 points from the bottom left.
    pub pictures: Vec<usize>,
    /// The picture's size as its dictionary says: 2 × 2 unless a test lies.
    pub picture_says: (u32, u32),
    /// A second size in the picture's dictionary, under the short keys `/W` and `/H` (an
    /// inline picture's, which readers such as `hayro` take first in any picture).
    pub picture_short_says: Option<(u32, u32)>,
    /// Page size in points; 960 × 540 (16:9) draws at 1920 × 1080 exactly.
    pub size: (f32, f32),
    pub password_protected: bool,
    /// Page 1's drawing FlateDecode-compressed, padded with spaces to unpack to this many
    /// bytes: 200 MB of it is a bomb of some 200 KB.
    pub unpacks_to: Option<usize>,
    /// A 10 × 10 dark grey picture written inside page 1's content (`BI … ID … EI`) at
    /// 700..800 × 300..400 points, its data spaces (grey 32) FlateDecode-compressed (then in
    /// hex, so no byte of it ends the picture early) to unpack to this many bytes; 100 is
    /// what its pixels need.
    pub inline_unpacks_to: Option<usize>,
}

impl PdfSpec {
    /// `pages` pages of text, the `n`th saying "Page n" and `text(n)`.
    pub fn text_pages(pages: usize, text: impl Fn(usize) -> String) -> Self {
        Self {
            title: None,
            pages: (1..=pages)
                .map(|n| vec![format!("Page {n}"), text(n)])
                .collect(),
            pictures: Vec::new(),
            picture_says: (2, 2),
            picture_short_says: None,
            size: (960.0, 540.0),
            password_protected: false,
            unpacks_to: None,
            inline_unpacks_to: None,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        // Objects 1-4 are the catalogue, the page tree, the font and the picture; then the
        // information dictionary and the encryption, then each page and its content.
        let mut objects: Vec<Vec<u8>> = Vec::new();
        let first_page = 7;
        let kids: Vec<String> = (0..self.pages.len())
            .map(|i| format!("{} 0 R", first_page + 2 * i))
            .collect();
        objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
        objects.push(
            format!(
                "<< /Type /Pages /Kids [{}] /Count {} >>",
                kids.join(" "),
                kids.len()
            )
            .into_bytes(),
        );
        objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
        let pixels = [255u8, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0];
        let (width, height) = self.picture_says;
        let short = self
            .picture_short_says
            .map_or_else(String::new, |(w, h)| format!(" /W {w} /H {h}"));
        objects.push(stream(
            &format!(
                "/Type /XObject /Subtype /Image /Width {width} /Height {height}{short} \
                 /ColorSpace /DeviceRGB /BitsPerComponent 8"
            ),
            &pixels,
        ));
        let title = self.title.as_deref().map_or_else(String::new, utf16_hex);
        objects.push(format!("<< /Title {title} /Producer (classcast tests) >>").into_bytes());
        // Standard security handler, revision 2; `/U` is what no empty password gives.
        objects.push(
            format!(
                "<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <{}> /U <{}> >>",
                "7a".repeat(32),
                "5c".repeat(32)
            )
            .into_bytes(),
        );
        for (i, lines) in self.pages.iter().enumerate() {
            let (w, h) = self.size;
            objects.push(
                format!(
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Resources << /Font \
                     << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> /Contents {} 0 R >>",
                    first_page + 2 * i + 1
                )
                .into_bytes(),
            );
            let mut content = String::new();
            for (n, line) in lines.iter().enumerate() {
                let y = h - 80.0 - 48.0 * n as f32;
                content.push_str(&format!(
                    "BT /F1 36 Tf 60 {y} Td ({}) Tj ET\n",
                    escape(line)
                ));
            }
            if self.pictures.contains(&(i + 1)) {
                content.push_str("q 200 0 0 200 400 100 cm /Im1 Do Q\n");
            }
            if let (Some(size), 0) = (self.inline_unpacks_to, i) {
                let hex: String = deflated("", size)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                content.push_str(&format!(
                    "q 100 0 0 100 700 300 cm BI /W 10 /H 10 /CS /G /BPC 8 /F [/AHx /Fl] ID \
                     {hex}> EI Q\n"
                ));
            }
            match self.unpacks_to {
                Some(size) if i == 0 => {
                    objects.push(stream("/Filter /FlateDecode", &deflated(&content, size)))
                }
                _ => objects.push(stream("", content.as_bytes())),
            }
        }

        let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            pdf.extend_from_slice(object);
            pdf.extend_from_slice(b"\nendobj\n");
        }
        let xref = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for offset in offsets {
            pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        let encrypt = if self.password_protected {
            " /Encrypt 6 0 R"
        } else {
            ""
        };
        let id = "0123456789abcdef0123456789abcdef";
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R{encrypt} /ID [<{id}> <{id}>] >>\n\
                 startxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        pdf
    }
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut object = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream");
    object
}

/// `text` padded with spaces to `size` bytes, zlib-compressed a MiB at a time.
fn deflated(text: &str, size: usize) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes()).unwrap();
    let spaces = vec![b' '; 1 << 20];
    let mut left = size.saturating_sub(text.len());
    while left > 0 {
        let n = left.min(spaces.len());
        encoder.write_all(&spaces[..n]).unwrap();
        left -= n;
    }
    encoder.finish().unwrap()
}

/// A PDF string literal's content: its delimiters and escape character escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)")
}

/// A PDF text string of any characters: UTF-16BE after its byte-order mark, in hex.
fn utf16_hex(text: &str) -> String {
    let units: String = text.encode_utf16().map(|u| format!("{u:04X}")).collect();
    format!("<FEFF{units}>")
}
