//! Presentations made for the tests and benchmarks of the office import: a deck written as
//! flat OpenDocument XML and converted by LibreOffice's `soffice` (which must be on `PATH`)
//! to `.pptx` or `.odp`, and a `.pptx` given PowerPoint's slide numbers on its notes pages.

// Shared by the API tests and a benchmark; each uses a part of it.
#![allow(dead_code)]

use std::io::Write;

/// A 16:9 presentation titled `title` of `slides` (each its text and speaker notes) as flat
/// OpenDocument XML, each slide's text in a frame and its notes page as PowerPoint makes one:
/// the slide drawn small above its speaker notes.
fn fodp(title: &str, slides: &[(&str, &str)]) -> String {
    let pages: String = slides
        .iter()
        .enumerate()
        .map(|(i, (text, notes))| {
            format!(
                r#"<draw:page draw:name="p{i}" draw:master-page-name="Default"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="24cm" svg:height="4cm"><draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame><presentation:notes><draw:page-thumbnail presentation:class="page" svg:x="2cm" svg:y="1cm" svg:width="17cm" svg:height="9.5cm"/><draw:frame presentation:class="notes" svg:x="2cm" svg:y="14cm" svg:width="17cm" svg:height="10cm"><draw:text-box><text:p>{notes}</text:p></draw:text-box></draw:frame></presentation:notes></draw:page>"#
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:meta><dc:title>{title}</dc:title></office:meta>
<office:automatic-styles><style:page-layout style:name="PM1"><style:page-layout-properties fo:page-width="28cm" fo:page-height="15.75cm" style:print-orientation="landscape"/></style:page-layout></office:automatic-styles>
<office:master-styles><style:master-page style:name="Default" style:page-layout-name="PM1"/></office:master-styles>
<office:body><office:presentation>{pages}</office:presentation></office:body></office:document>"#
    )
}

/// [`fodp`] converted by LibreOffice to `format` (`pptx`, `odp`), in a directory of its own.
pub fn deck(title: &str, slides: &[(&str, &str)], format: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deck.fodp"), fodp(title, slides)).unwrap();
    let status = std::process::Command::new("soffice")
        .arg(format!(
            "-env:UserInstallation=file://{}/profile",
            dir.path().display()
        ))
        .args([
            "--headless",
            "--norestore",
            "--convert-to",
            format,
            "--outdir",
        ])
        .arg(dir.path())
        .arg(dir.path().join("deck.fodp"))
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(dir.path().join(format!("deck.{format}"))).unwrap()
}

/// The `.pptx` with its slide's number under each notes page, as PowerPoint's notes pages
/// have (LibreOffice writes none of its own).
pub fn with_slide_numbers(pptx: &[u8]) -> Vec<u8> {
    let mut from = zip::ZipArchive::new(std::io::Cursor::new(pptx)).unwrap();
    let mut to = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..from.len() {
        let mut entry = from.by_index(i).unwrap();
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if let Some(n) = name
            .strip_prefix("ppt/notesSlides/notesSlide")
            .and_then(|n| n.strip_suffix(".xml"))
        {
            let number = format!(
                r#"<p:sp><p:nvSpPr><p:cNvPr id="95" name="Slide Number"/><p:cNvSpPr/><p:nvPr><p:ph type="sldNum" idx="5"/></p:nvPr></p:nvSpPr><p:spPr><a:xfrm><a:off x="3884613" y="8685213"/><a:ext cx="2971800" cy="458787"/></a:xfrm></p:spPr><p:txBody><a:bodyPr/><a:p><a:fld id="{{B0A4C5D6-1111-2222-3333-44445555666{n}}}" type="slidenum"><a:t>{n}</a:t></a:fld></a:p></p:txBody></p:sp></p:spTree>"#
            );
            let xml = String::from_utf8(bytes).unwrap();
            bytes = xml.replace("</p:spTree>", &number).into_bytes();
        }
        to.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        to.write_all(&bytes).unwrap();
    }
    to.finish().unwrap().into_inner()
}
