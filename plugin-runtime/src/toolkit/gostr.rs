//! Go strings are bytes: what Go's string functions do, over `&[u8]` where a value can hold
//! invalid UTF-8 (a byte-counting cut inside a character, a `\xff` escape).
//!
//! Case mapping (`strings.ToUpper` / `ToLower`) goes rune by rune with Unicode *simple*
//! case mappings, so the length in characters never changes (`ß` stays `ß`, a final `Σ`
//! becomes `σ`).

/// Go's `utf8.DecodeRune`: the character at the start of `b` and its width; an invalid or
/// incomplete sequence (and an empty `b`) is U+FFFD of width 1.
pub(crate) fn decode_rune(b: &[u8]) -> (char, usize) {
    let w = match b.first() {
        None => return ('\u{FFFD}', 1),
        Some(0x00..=0x7F) => return (b[0] as char, 1),
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        Some(_) => return ('\u{FFFD}', 1),
    };
    match b.get(..w).map(std::str::from_utf8) {
        Some(Ok(s)) => (s.chars().next().unwrap_or('\u{FFFD}'), w),
        _ => ('\u{FFFD}', 1),
    }
}

/// Go's `for i, r := range s`: (start, width, rune) with invalid bytes as U+FFFD one by one.
pub(crate) fn runes(b: &[u8]) -> impl Iterator<Item = (usize, usize, char)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= b.len() {
            return None;
        }
        let (c, w) = decode_rune(&b[i..]);
        let at = i;
        i += w;
        Some((at, w, c))
    })
}

/// Go's `utf8.RuneCount`.
pub(crate) fn rune_count(b: &[u8]) -> usize {
    runes(b).count()
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// `strings.Map(f, s)` for a mapping that never deletes: every invalid byte becomes U+FFFD.
fn map_runes(b: &[u8], f: fn(char) -> char) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (_, _, c) in runes(b) {
        push_char(&mut out, f(c));
    }
    out
}

/// `strings.ToUpper` of a Go string.
pub(crate) fn to_upper_bytes(b: &[u8]) -> Vec<u8> {
    if b.is_ascii() {
        return b.to_ascii_uppercase();
    }
    map_runes(b, simple_upper)
}

/// `strings.ToLower` of a Go string.
pub(crate) fn to_lower_bytes(b: &[u8]) -> Vec<u8> {
    if b.is_ascii() {
        return b.to_ascii_lowercase();
    }
    map_runes(b, simple_lower)
}

/// The first index of `needle` in `hay` (`strings.Index`; an empty needle is at 0).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `strings.ReplaceAll(s, find, with)` of Go strings: an empty `find` matches at the start
/// and after every rune (an invalid byte is a rune of its own), as in Go.
pub(crate) fn replace_all_bytes(s: &[u8], find_: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    if find_.is_empty() {
        out.extend_from_slice(with);
        for (at, w, _) in runes(s) {
            out.extend_from_slice(&s[at..at + w]);
            out.extend_from_slice(with);
        }
        return out;
    }
    let mut rest = s;
    while let Some(i) = find(rest, find_) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + find_.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Go's `string([]byte)` conversion seen through a later rune-wise step: each invalid byte
/// becomes U+FFFD (unlike `String::from_utf8_lossy`, which replaces a whole incomplete
/// sequence with one).
pub(crate) fn lossy_per_byte(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for (_, _, c) in runes(b) {
        out.push(c);
    }
    out
}

fn simple_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => match c as u32 {
            // Greek letters with ypogegrammeni: the simple mapping is the titlecase letter.
            0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => {
                char::from_u32(c as u32 + 8).unwrap_or(c)
            }
            0x1FB3 => '\u{1FBC}',
            0x1FC3 => '\u{1FCC}',
            0x1FF3 => '\u{1FFC}',
            _ => c,
        },
    }
}

fn simple_lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}
