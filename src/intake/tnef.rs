//! TNEF (`winmail.dat`, `application/ms-tnef`) unpacking: the files Outlook
//! wraps into one attachment (MS-OXTNEF §2.1.3).
//!
//! Hand-written: the one crate found (`tnef` 0.1) refuses any attribute
//! id it does not know and needs every date attribute, which real
//! `winmail.dat` files do not always have. This reader takes what it
//! understands (each attachment's title and data) and skips the rest;
//! truncated input ends the walk, it never panics.

/// `TNEF_SIGNATURE`, little-endian.
const SIGNATURE: u32 = 0x223E_9F78;
/// Attachment-level attributes.
const LVL_ATTACHMENT: u8 = 0x02;
/// `attAttachRendData`: starts a new attachment.
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
/// `attAttachTitle`: the file name (8-bit, NUL-terminated).
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
/// `attAttachData`: the file's bytes.
const ATT_ATTACH_DATA: u32 = 0x0006_800F;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The files inside a TNEF stream, as (name, bytes); `None` when the
/// bytes are not TNEF at all.
pub fn unpack(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if u32_at(data, 0)? != SIGNATURE {
        return None;
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut current: Option<(String, Option<Vec<u8>>)> = None;
    let mut at = 6; // signature + legacy key
    while at + 9 <= data.len() {
        let level = data[at];
        let Some(id) = u32_at(data, at + 1) else {
            break;
        };
        let Some(len) = u32_at(data, at + 5).and_then(|l| usize::try_from(l).ok()) else {
            break;
        };
        let start = at + 9;
        let Some(value) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
            break;
        };
        at = start + len + 2; // value, then a 16-bit checksum
        if level != LVL_ATTACHMENT {
            continue;
        }
        match id {
            ATT_ATTACH_REND_DATA => {
                if let Some((name, Some(bytes))) = current.take() {
                    files.push((name, bytes));
                }
                current = Some((String::new(), None));
            }
            ATT_ATTACH_TITLE => {
                let raw = value.split(|&b| b == 0).next().unwrap_or_default();
                let (name, _, _) = encoding_rs::WINDOWS_1252.decode(raw);
                current.get_or_insert_with(|| (String::new(), None)).0 = name.trim().to_string();
            }
            ATT_ATTACH_DATA => {
                current.get_or_insert_with(|| (String::new(), None)).1 = Some(value.to_vec());
            }
            _ => {}
        }
    }
    if let Some((name, Some(bytes))) = current {
        files.push((name, bytes));
    }
    Some(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn attr(out: &mut Vec<u8>, level: u8, id: u32, value: &[u8]) {
        out.push(level);
        out.extend(id.to_le_bytes());
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        let sum = value
            .iter()
            .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend(sum.to_le_bytes());
    }

    /// A winmail.dat holding `files`, with message-level noise.
    pub(crate) fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = SIGNATURE.to_le_bytes().to_vec();
        out.extend(0x1234u16.to_le_bytes());
        attr(&mut out, 0x01, 0x0008_9006, &[0, 0, 1, 0]); // attTnefVersion
        attr(&mut out, 0x01, 0x0007_8008, b"IPM.Microsoft Mail.Note\0");
        for (name, data) in files {
            attr(&mut out, LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, &[0; 14]);
            attr(
                &mut out,
                LVL_ATTACHMENT,
                ATT_ATTACH_TITLE,
                format!("{name}\0").as_bytes(),
            );
            attr(&mut out, LVL_ATTACHMENT, 0x0003_8013, &[0; 14]); // a date we skip
            attr(&mut out, LVL_ATTACHMENT, ATT_ATTACH_DATA, data);
        }
        out
    }

    #[test]
    fn files_come_out_with_names() {
        let files = unpack(&build(&[
            ("report.txt", b"hello"),
            ("Caf\u{e9}.bin", &[0, 1, 2]),
        ]))
        .unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            (files[0].0.as_str(), files[0].1.as_slice()),
            ("report.txt", &b"hello"[..])
        );
        assert_eq!(files[1].1, vec![0, 1, 2]);
    }

    #[test]
    fn not_tnef_truncated_or_empty() {
        assert!(unpack(b"PK\x03\x04 zip").is_none());
        assert_eq!(unpack(&build(&[])).unwrap().len(), 0);
        let whole = build(&[("a.txt", b"abcdef")]);
        for cut in 0..whole.len() {
            let _ = unpack(&whole[..cut]);
        }
    }
}
