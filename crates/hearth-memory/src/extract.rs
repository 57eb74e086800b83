//! Text out of uploaded files, for vector stores to chunk and embed: plain text, Markdown,
//! CSV and JSON as they are (UTF-8, a byte-order mark dropped), HTML with its markup, scripts
//! and styles removed and block elements turned into line breaks, and PDF's text page by page
//! (`lopdf`, each page's decompressed content bounded), and Office Open XML's (`office.rs`). The kind is told by the file name's
//! extension, or for a name without a known one by the content.

use crate::MemoryError;
use crate::office::{Office, office_text};

/// The text of a file named `filename` with these bytes; errors name the `file`.
pub fn extract_text(filename: &str, bytes: &[u8]) -> Result<String, MemoryError> {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => pdf_text(filename, bytes),
        "docx" => office_text(filename, bytes, Office::Word),
        "pptx" => office_text(filename, bytes, Office::PowerPoint),
        "xlsx" => office_text(filename, bytes, Office::Excel),
        "doc" | "ppt" | "xls" => Err(unsupported(filename, "binary Office (97-2003)")),
        "html" | "htm" => Ok(html_to_text(&utf8(filename, bytes)?)),
        _ if bytes.starts_with(b"%PDF-") => pdf_text(filename, bytes),
        _ => {
            let text = utf8(filename, bytes)?;
            let start = text
                .trim_start()
                .get(..15)
                .unwrap_or("")
                .to_ascii_lowercase();
            if start.starts_with("<!doctype html") || start.starts_with("<html") {
                Ok(html_to_text(&text))
            } else {
                Ok(text)
            }
        }
    }
}

fn unsupported(filename: &str, kind: &str) -> MemoryError {
    MemoryError::invalid(
        "file",
        format!(
            "`{filename}` is a {kind} file, whose text cannot be read; save it as .docx, .pptx or \
             .xlsx, or send plain text, Markdown, JSON, HTML or PDF"
        ),
    )
}

/// The most bytes one PDF page's content may decompress to: text pages take kilobytes, so
/// this stops a decompression bomb, not a real page.
const MAX_PDF_PAGE_BYTES: usize = 64 << 20;

/// A PDF's text, page by page; a page whose text cannot be read is skipped. A damaged or
/// encrypted file is refused by name. The parser runs behind `catch_unwind`: a malformed file
/// must fail its own read, never the worker.
fn pdf_text(filename: &str, bytes: &[u8]) -> Result<String, MemoryError> {
    let not_readable = |reason: String| {
        MemoryError::invalid(
            "file",
            format!("`{filename}` is not a PDF whose text can be read: {reason}"),
        )
    };
    let parsed = std::panic::catch_unwind(|| -> Result<String, String> {
        let document = lopdf::Document::load_mem(bytes).map_err(|error| error.to_string())?;
        if document.is_encrypted() {
            return Err("it is encrypted; upload a copy without a password".to_string());
        }
        let mut text = String::new();
        for page in document.get_pages().keys() {
            if let Ok(page_text) = document.extract_text_with_limit(&[*page], MAX_PDF_PAGE_BYTES) {
                let page_text = page_text.trim();
                if !page_text.is_empty() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(page_text);
                }
            }
        }
        Ok(text)
    });
    match parsed {
        Ok(result) => result.map_err(not_readable),
        Err(_) => Err(not_readable("the parser failed on it".to_string())),
    }
}

fn utf8(filename: &str, bytes: &[u8]) -> Result<String, MemoryError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|error| {
        MemoryError::invalid(
            "file",
            format!(
                "`{filename}` is not UTF-8 text (invalid byte at {}); send text files as UTF-8",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Elements whose end starts a new line of text.
const BLOCKS: [&str; 22] = [
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "title",
    "hr",
];

/// The visible text of an HTML document.
fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&decode_entities(&rest[..open]));
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            // Skip to the element's end: its content is not text.
            let end = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower
                .find(&end)
                .and_then(|at| rest[at..].find('>').map(|close| &rest[at + close + 1..]))
                .unwrap_or("");
            continue;
        }
        if BLOCKS.contains(&name.as_str()) && !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
    }
    text.push_str(&decode_entities(rest));
    // Runs of blank space left by markup become single spaces and single line breaks.
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gives_its_visible_text_in_lines() {
        let html = "<!DOCTYPE html><html><head><title>Wings</title>\
                    <style>p { color: red }</style><script>var x = '<p>';</script></head>\
                    <body><h1>Lift &amp; drag</h1><!-- a <b>comment</b> -->\
                    <p>Air   flows<br>over the <b>wing</b>.</p><ul><li>caf&eacute; &#233; &#x1F600;</li></ul>\
                    </body></html>";
        assert_eq!(
            extract_text("page.html", html.as_bytes()).unwrap(),
            "Wings\nLift & drag\nAir flows\nover the wing.\ncaf&eacute; é 😀"
        );
        // Told by the content when the name says nothing.
        assert!(
            extract_text("download", html.as_bytes())
                .unwrap()
                .starts_with("Wings")
        );
    }

    #[test]
    fn text_is_taken_as_it_is_and_what_cannot_be_read_is_named() {
        let markdown = "\u{feff}# Title\n\nSome *text* & more.";
        assert_eq!(
            extract_text("notes.md", markdown.as_bytes()).unwrap(),
            "# Title\n\nSome *text* & more."
        );
        let json = br#"{"a": "<b>not html</b>"}"#;
        assert_eq!(
            extract_text("data.json", json).unwrap(),
            r#"{"a": "<b>not html</b>"}"#
        );
        let error = extract_text("paper.pdf", b"%PDF-1.7 ...").unwrap_err();
        assert!(
            matches!(&error, MemoryError::Invalid { field, reason } if field == "file" && reason.contains("PDF")),
            "{error:?}"
        );
        let error = extract_text("slides.pptx", b"PK\x03\x04").unwrap_err();
        assert!(
            matches!(&error, MemoryError::Invalid { reason, .. } if reason.contains("Office")),
            "{error:?}"
        );
        let error = extract_text("blob.bin", &[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(
            matches!(&error, MemoryError::Invalid { reason, .. } if reason.contains("UTF-8")),
            "{error:?}"
        );
    }

    /// A PDF as a producer writes one: a catalog, a page tree of two pages in Helvetica, their
    /// content streams and a cross-reference table with the objects' byte offsets.
    fn two_page_pdf() -> Vec<u8> {
        let pages = [
            "Lift is the force that holds a wing up.",
            "Drag (the other one) slows it.",
        ];
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 2 >>".to_string(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        ];
        for (position, text) in pages.iter().enumerate() {
            let content_id = 5 + position * 2;
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
            ));
            let escaped = text.replace('(', "\\(").replace(')', "\\)");
            let stream = format!("BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET");
            objects.push(format!(
                "<< /Length {} >>\nstream\n{stream}\nendstream",
                stream.len()
            ));
        }
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
        }
        let xref = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for offset in offsets {
            pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        pdf
    }

    #[test]
    fn a_pdf_gives_its_pages_text_and_a_broken_one_is_refused() {
        let text = extract_text("wings.pdf", &two_page_pdf()).unwrap();
        assert!(
            text.contains("Lift is the force that holds a wing up."),
            "{text:?}"
        );
        assert!(text.contains("Drag (the other one) slows it."), "{text:?}");
        assert!(
            text.find("Lift").unwrap() < text.find("Drag").unwrap(),
            "pages out of order: {text:?}"
        );
        // Told by the content when the name says nothing.
        assert_eq!(extract_text("download", &two_page_pdf()).unwrap(), text);
        let mut truncated = two_page_pdf();
        truncated.truncate(40);
        let error = extract_text("cut.pdf", &truncated).unwrap_err();
        assert!(
            matches!(&error, MemoryError::Invalid { field, reason } if field == "file" && reason.contains("cut.pdf")),
            "{error:?}"
        );
    }
}
