//! The pairing link a board shows as a QR code beside its six digits: the teachers' address
//! with the code in the fragment (`https://classcast.school.org/teach#pair=123456&board=K7QM`),
//! and that link drawn as an SVG. The link carries nothing the digits and the fingerprint on
//! the screen do not; the fragment never leaves the teacher's browser (not sent to the
//! server, not in a `Referer`). Pure: it knows no HTTP.

use qrcode::{Color, EcLevel, QrCode};

/// Longest teachers' address a link is made with.
pub const URL_MAX: usize = 300;

/// Modules of white around the code, as the standard asks.
const QUIET_ZONE: usize = 4;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub &'static str);

/// The link that opens `teach_url` with `code` filled in, for the board `fingerprint`.
pub fn link(teach_url: &str, code: &str, fingerprint: &str) -> Result<String, LinkError> {
    let plain = teach_url.len() <= URL_MAX
        && teach_url.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
        && (teach_url.starts_with("https://") || teach_url.starts_with("http://"));
    if !plain {
        return Err(LinkError(
            "`url` must be the teachers' address: http(s), at most 300 characters, no `#`",
        ));
    }
    Ok(format!("{teach_url}#pair={code}&board={fingerprint}"))
}

/// `text` as a QR code in SVG, black on white, one unit per module (scale it freely). Error
/// correction M: a smudged or partly lit board still reads.
pub fn svg(text: &str) -> String {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .expect("a link of at most a few hundred bytes fits a QR code");
    let width = code.width();
    let side = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_made_only_with_a_plain_web_address() {
        assert_eq!(
            link("https://classcast.school.org/teach", "123456", "K7QM").unwrap(),
            "https://classcast.school.org/teach#pair=123456&board=K7QM"
        );
        for bad in [
            "javascript:alert(1)",
            "https://a.org/teach#x",
            "https://a.org/te ach",
            "ftp://a.org/teach",
            &format!("https://{}.org", "a".repeat(300)),
        ] {
            assert!(link(bad, "123456", "K7QM").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_svg_has_a_quiet_zone_and_only_the_modules() {
        let svg = svg("https://classcast.school.org/teach#pair=123456&board=K7QM");
        // 57 characters at level M: version 4, 33 modules, plus 4 on each side.
        assert!(svg.contains("viewBox=\"0 0 41 41\""), "{svg}");
        assert!(svg.starts_with("<svg") && !svg.contains("<script"));
    }
}
