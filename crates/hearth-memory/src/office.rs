//! The text of Office Open XML files (`.docx`, `.pptx`, `.xlsx`): zip archives of XML parts.
//! Word's paragraphs (`<w:t>` runs, one line per `<w:p>`), PowerPoint's slides in order (`<a:t>`
//! runs, a blank line between slides) and Excel's sheets (one line per row, cells separated by
//! tabs, shared strings resolved). Formatting, images and embedded objects are left out.
//! Decompression is bounded, so a zip bomb is refused, not unpacked.

use std::io::Read;

use crate::MemoryError;

/// The most bytes one part may decompress to.
const MAX_PART_BYTES: u64 = 64 << 20;
/// The most bytes all parts read may decompress to together.
const MAX_TOTAL_BYTES: u64 = 256 << 20;

/// Which kind of Office file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Office {
    Word,
    PowerPoint,
    Excel,
}

fn damaged(filename: &str, why: impl std::fmt::Display) -> MemoryError {
    MemoryError::invalid(
        "file",
        format!(
            "`{filename}` is not a readable Office file ({why}); save it again, or send PDF or text"
        ),
    )
}

struct Archive<'a> {
    filename: &'a str,
    zip: zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
    read: u64,
}

impl<'a> Archive<'a> {
    fn open(filename: &'a str, bytes: &'a [u8]) -> Result<Archive<'a>, MemoryError> {
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|error| damaged(filename, error))?;
        Ok(Archive {
            filename,
            zip,
            read: 0,
        })
    }

    fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .filter_map(|name| name.ok().map(|name| name.into_owned()))
            .collect()
    }

    /// A part's XML, or `None` when the archive has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, MemoryError> {
        let mut file = match self.zip.by_name(name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(damaged(self.filename, error)),
        };
        let limit = MAX_PART_BYTES.min(MAX_TOTAL_BYTES.saturating_sub(self.read));
        let mut bytes = Vec::new();
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| damaged(self.filename, error))?;
        if bytes.len() as u64 > limit {
            return Err(MemoryError::invalid(
                "file",
                format!(
                    "`{}` unpacks to more than {} MiB of XML; it is refused as a possible zip bomb",
                    self.filename,
                    limit >> 20
                ),
            ));
        }
        self.read += bytes.len() as u64;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| damaged(self.filename, format!("{name} is not UTF-8")))
    }
}

/// The text of an Office file.
pub(crate) fn office_text(
    filename: &str,
    bytes: &[u8],
    kind: Office,
) -> Result<String, MemoryError> {
    let mut archive = Archive::open(filename, bytes)?;
    let text = match kind {
        Office::Word => {
            let document = archive
                .part("word/document.xml")?
                .ok_or_else(|| damaged(filename, "it has no word/document.xml"))?;
            runs(&document, "w:t", "w:p")
        }
        Office::PowerPoint => {
            let mut slides: Vec<(u32, String)> = archive
                .names()
                .into_iter()
                .filter_map(|name| {
                    let number = name
                        .strip_prefix("ppt/slides/slide")?
                        .strip_suffix(".xml")?
                        .parse()
                        .ok()?;
                    Some((number, name))
                })
                .collect();
            slides.sort();
            let mut text = Vec::new();
            for (_, name) in slides {
                if let Some(slide) = archive.part(&name)? {
                    text.push(runs(&slide, "a:t", "a:p").trim().to_string());
                }
            }
            text.join("\n\n")
        }
        Office::Excel => {
            let shared = archive
                .part("xl/sharedStrings.xml")?
                .map(|xml| shared_strings(&xml))
                .unwrap_or_default();
            let mut sheets: Vec<(u32, String)> = archive
                .names()
                .into_iter()
                .filter_map(|name| {
                    let number = name
                        .strip_prefix("xl/worksheets/sheet")?
                        .strip_suffix(".xml")?
                        .parse()
                        .ok()?;
                    Some((number, name))
                })
                .collect();
            sheets.sort();
            let mut text = Vec::new();
            for (_, name) in sheets {
                if let Some(sheet) = archive.part(&name)? {
                    text.push(cells(&sheet, &shared).trim().to_string());
                }
            }
            text.join("\n\n")
        }
    };
    Ok(text.trim().to_string())
}

/// One XML tag: its name, whether it closes (`</a>`) and whether it is empty (`<a/>`), and its
/// attributes' text.
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    empty: bool,
    attributes: &'a str,
}

/// What [`walk`] meets: a tag, or the text between two tags (entities decoded).
enum Node<'a> {
    Tag(Tag<'a>),
    Text(String),
}

/// Walks `xml` in order. Comments, processing instructions and declarations are skipped.
fn walk(xml: &str, mut visit: impl FnMut(Node<'_>)) {
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        if open > 0 {
            visit(Node::Text(crate::extract::decode_entities(&rest[..open])));
        }
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            return;
        };
        let inner = &rest[1..close];
        rest = &rest[close + 1..];
        if inner.starts_with('?') || inner.starts_with('!') {
            continue;
        }
        let closing = inner.starts_with('/');
        let inner = inner.trim_start_matches('/');
        let empty = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let (name, attributes) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        visit(Node::Tag(Tag {
            name,
            closing,
            empty,
            attributes,
        }));
    }
    if !rest.is_empty() {
        visit(Node::Text(crate::extract::decode_entities(rest)));
    }
}

/// The text of `text_tag` runs, a line per `line_tag`; tabs and breaks kept (Word's `w:tab`,
/// `w:br`, `w:cr`; PowerPoint's `a:br`).
fn runs(xml: &str, text_tag: &str, line_tag: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    walk(xml, |node| match node {
        Node::Text(text) if in_run => out.push_str(&text),
        Node::Text(_) => {}
        Node::Tag(tag) if tag.name == text_tag => in_run = !tag.closing && !tag.empty,
        Node::Tag(tag) if tag.closing && tag.name == line_tag => out.push('\n'),
        Node::Tag(tag) if tag.closing => {}
        Node::Tag(tag) => match tag.name {
            "w:tab" => out.push('\t'),
            "w:br" | "w:cr" | "a:br" => out.push('\n'),
            _ => {}
        },
    });
    out
}

/// Excel's shared strings, in order: each `<si>`'s `<t>` runs joined.
fn shared_strings(xml: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut current = String::new();
    let mut in_text = false;
    walk(xml, |node| match node {
        Node::Text(text) if in_text => current.push_str(&text),
        Node::Text(_) => {}
        Node::Tag(tag) if tag.name == "t" => in_text = !tag.closing && !tag.empty,
        Node::Tag(tag) if tag.name == "si" && tag.closing => {
            strings.push(std::mem::take(&mut current));
        }
        Node::Tag(_) => {}
    });
    strings
}

/// A sheet as lines of tab-separated cells: shared strings looked up, inline strings and
/// values as written.
fn cells(xml: &str, shared: &[String]) -> String {
    let mut out = String::new();
    let mut row: Vec<String> = Vec::new();
    let mut shared_cell = false;
    let mut value = String::new();
    let mut in_value = false;
    walk(xml, |node| match node {
        Node::Text(text) if in_value => value.push_str(&text),
        Node::Text(_) => {}
        Node::Tag(tag) => match (tag.name, tag.closing) {
            ("c", false) => {
                shared_cell = tag.attributes.contains("t=\"s\"");
                value.clear();
                if tag.empty {
                    row.push(String::new());
                }
            }
            ("v" | "t", false) => in_value = !tag.empty,
            ("v" | "t", true) => in_value = false,
            ("c", true) => {
                let cell = if shared_cell {
                    value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .and_then(|index| shared.get(index).cloned())
                        .unwrap_or_default()
                } else {
                    std::mem::take(&mut value)
                };
                row.push(cell);
            }
            ("row", true) => {
                while row.last().is_some_and(String::is_empty) {
                    row.pop();
                }
                if !row.is_empty() {
                    out.push_str(&row.join("\t"));
                    out.push('\n');
                }
                row.clear();
            }
            _ => {}
        },
    });
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A zip of (name, text) parts, deflated as Office saves them.
    fn archive(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in parts {
            zip.start_file(*name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        buffer.into_inner()
    }

    #[test]
    fn word_paragraphs_become_lines() {
        let docx = archive(&[(
            "word/document.xml",
            r#"<?xml version="1.0"?><w:document><w:body>
            <w:p><w:r><w:t>Lift &amp; drag</w:t></w:r></w:p>
            <w:p><w:r><w:t xml:space="preserve">Wings </w:t></w:r><w:r><w:tab/><w:t>fly</w:t></w:r></w:p>
            </w:body></w:document>"#,
        )]);
        assert_eq!(
            office_text("a.docx", &docx, Office::Word).unwrap(),
            "Lift & drag\nWings \tfly"
        );
    }

    #[test]
    fn slides_come_in_order_and_sheets_resolve_shared_strings() {
        let pptx = archive(&[
            (
                "ppt/slides/slide10.xml",
                "<p:sld><a:p><a:r><a:t>Ten</a:t></a:r></a:p></p:sld>",
            ),
            (
                "ppt/slides/slide2.xml",
                "<p:sld><a:p><a:r><a:t>Two</a:t></a:r></a:p></p:sld>",
            ),
        ]);
        assert_eq!(
            office_text("deck.pptx", &pptx, Office::PowerPoint).unwrap(),
            "Two\n\nTen"
        );
        let xlsx = archive(&[
            (
                "xl/sharedStrings.xml",
                "<sst><si><t>wing</t></si><si><r><t>lift</t></r><r><t> coefficient</t></r></si></sst>",
            ),
            (
                "xl/worksheets/sheet1.xml",
                r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>
                <row r="2"><c r="A2"><v>3.5</v></c><c r="B2" t="inlineStr"><is><t>high</t></is></c></row></sheetData></worksheet>"#,
            ),
        ]);
        assert_eq!(
            office_text("data.xlsx", &xlsx, Office::Excel).unwrap(),
            "wing\tlift coefficient\n3.5\thigh"
        );
    }

    #[test]
    fn damaged_files_and_zip_bombs_are_refused_by_name() {
        let error = office_text("broken.docx", b"not a zip", Office::Word).unwrap_err();
        assert!(error.to_string().contains("broken.docx"), "{error}");
        let missing = archive(&[("other.xml", "<a/>")]);
        assert!(office_text("empty.docx", &missing, Office::Word).is_err());
        // 80 MiB of one repeated byte deflates to a few hundred kilobytes.
        let bomb_text = format!("<w:t>{}</w:t>", "a".repeat(80 << 20));
        let bomb = archive(&[("word/document.xml", &bomb_text)]);
        assert!(bomb.len() < 1 << 20);
        let error = office_text("bomb.docx", &bomb, Office::Word).unwrap_err();
        assert!(error.to_string().contains("zip bomb"), "{error}");
    }
}
