//! Random strings, usernames and passwords the way the SDK's `base62` and `credsutil`
//! packages make them.
//!
//! ```
//! use dbplugin::toolkit::credentials::{self, UsernameGenerator, CaseOp};
//!
//! let password = credentials::generate_password();
//! assert_eq!(password.expose().len(), 20);
//! assert!(password.expose().starts_with("A1a-"));
//!
//! let username = UsernameGenerator::new()
//!     .display_name("token-alice", 8)
//!     .role_name("readonly", 8)
//!     .separator("-")
//!     .max_length(63)
//!     .case(CaseOp::Lowercase)
//!     .generate();
//! assert!(username.starts_with("v-token-al-readonly-"));
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

use crate::{Error, Secret};

/// The base62 alphabet in the SDK's order: upper case, lower case, digits.
pub const BASE62_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The prefix `random_alphanumeric` puts in front when asked to (`A1a-`).
pub const A1A_PREFIX: &str = "A1a-";

/// The shortest length `random_alphanumeric` accepts.
pub const MIN_ALPHANUMERIC_LEN: usize = 10;

/// `length` characters of [`BASE62_ALPHABET`] from a cryptographically secure generator:
/// `rand`'s per-thread ChaCha generator, seeded and periodically reseeded from the operating
/// system (one `getrandom` system call per credential was a measurable share of a
/// `NewUser` call).
///
/// Bytes are drawn in batches of `length + length / 4`; a byte is used only if it is below
/// 248 (4 × 62), as `charset[b % 62]`, so every character is equally likely.
pub fn base62_random(length: usize) -> String {
    base62_random_with(length, &mut random_bytes)
}

/// [`base62_random`] with your own source of random bytes (for tests).
pub fn base62_random_with(length: usize, fill: &mut dyn FnMut(&mut [u8])) -> String {
    let alphabet = BASE62_ALPHABET.as_bytes();
    let mut out = String::with_capacity(length);
    if length == 0 {
        return out;
    }
    let mut buf = vec![0u8; length + length / 4];
    loop {
        fill(&mut buf);
        for &b in &buf {
            if b < 62 * 4 {
                out.push(alphabet[(b % 62) as usize] as char);
                if out.len() == length {
                    return out;
                }
            }
        }
    }
}

/// `credsutil.RandomAlphaNumeric`: `length` characters, the first four being `A1a-` when
/// `prepend_a1a`, the rest base62. Errors with `minimum length of 10 is required` below 10.
pub fn random_alphanumeric(length: usize, prepend_a1a: bool) -> Result<String, Error> {
    if length < MIN_ALPHANUMERIC_LEN {
        return Err(Error::invalid_argument(format!(
            "minimum length of {MIN_ALPHANUMERIC_LEN} is required"
        )));
    }
    let prefix = if prepend_a1a { A1A_PREFIX } else { "" };
    Ok(format!("{prefix}{}", base62_random(length - prefix.len())))
}

/// The v4-era password (`credsutil` `GeneratePassword`/`GenerateCredentials`): `A1a-` and
/// 16 base62 characters.
pub fn generate_password() -> Secret {
    Secret::new(random_alphanumeric(20, true).expect("20 is above the minimum"))
}

/// Fills `buf` from `rand`'s thread-local CSPRNG (seeded from the operating system).
pub(crate) fn random_bytes(buf: &mut [u8]) {
    rand::rng().fill_bytes(buf);
}

/// What `credsutil`'s username generator does to the letters of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseOp {
    /// Leave them (`KeepCase`).
    #[default]
    Keep,
    /// Upper-case everything (`Uppercase`).
    Uppercase,
    /// Lower-case everything (`Lowercase`).
    Lowercase,
}

/// How a name part is cut, as `credsutil.DisplayName(name, len)` / `RoleName` do, for
/// building a `String`: `len > 0` keeps the first `len` bytes, `0` keeps everything, `< 0`
/// (the SDK's `NoneLength = -1`) drops the part.
///
/// Go slices bytes; when the cut falls inside a character this keeps only the whole
/// characters before it (a `&str` cannot hold the partial bytes). [`UsernameGenerator`]
/// keeps Go's exact bytes.
pub fn truncate_part(s: &str, len: i64) -> &str {
    match len {
        l if l > 0 => go_byte_prefix(s, l as usize),
        0 => s,
        _ => "",
    }
}

/// [`truncate_part`] on bytes, exactly as Go slices.
fn truncate_part_bytes(s: &[u8], len: i64) -> &[u8] {
    match len {
        l if l > 0 => &s[..s.len().min(l as usize)],
        0 => s,
        _ => b"",
    }
}

/// The first `n` bytes of `s`, backing off to a character boundary.
fn go_byte_prefix(s: &str, n: usize) -> &str {
    if n >= s.len() {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `credsutil.GenerateUsername`: `v`, display name, role name, 20 random base62 characters
/// and the unix time in seconds, joined by the separator (empty parts skipped; an empty
/// separator concatenates), cut to the maximum length, then case-converted.
///
/// All cuts count bytes, as in Go. [`generate_bytes_from`](Self::generate_bytes_from) gives
/// Go's exact bytes; the `String` methods turn each byte of a character cut in half into
/// U+FFFD (what Go's case conversion does to it).
///
/// Defaults as in the SDK: separator `_`, maximum length 100, case kept, no display or role
/// name.
#[derive(Debug, Clone)]
pub struct UsernameGenerator {
    display_name: Vec<u8>,
    role_name: Vec<u8>,
    separator: String,
    max_length: i64,
    case: CaseOp,
}

impl Default for UsernameGenerator {
    fn default() -> Self {
        UsernameGenerator {
            display_name: Vec::new(),
            role_name: Vec::new(),
            separator: "_".into(),
            max_length: 100,
            case: CaseOp::Keep,
        }
    }
}

impl UsernameGenerator {
    /// The SDK defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The display name, cut to `max_len` bytes as [`truncate_part`] describes.
    #[must_use]
    pub fn display_name(mut self, name: &str, max_len: i64) -> Self {
        self.display_name = truncate_part_bytes(name.as_bytes(), max_len).to_vec();
        self
    }

    /// The role name, cut to `max_len` bytes as [`truncate_part`] describes.
    #[must_use]
    pub fn role_name(mut self, name: &str, max_len: i64) -> Self {
        self.role_name = truncate_part_bytes(name.as_bytes(), max_len).to_vec();
        self
    }

    /// The separator between parts.
    #[must_use]
    pub fn separator(mut self, sep: &str) -> Self {
        self.separator = sep.to_owned();
        self
    }

    /// The maximum length in bytes (`0` for no limit, negative for an empty result).
    #[must_use]
    pub fn max_length(mut self, len: i64) -> Self {
        self.max_length = len;
        self
    }

    /// The case conversion.
    #[must_use]
    pub fn case(mut self, case: CaseOp) -> Self {
        self.case = case;
        self
    }

    /// A username with fresh randomness and the current time.
    pub fn generate(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.generate_from(&base62_random(20), now)
    }

    /// A username from the given random part and unix time (deterministic, for tests).
    pub fn generate_from(&self, random: &str, unix_secs: i64) -> String {
        super::gostr::lossy_per_byte(&self.generate_bytes_from(random, unix_secs))
    }

    /// Go's exact bytes for the given random part and unix time.
    ///
    /// ```
    /// use dbplugin::toolkit::credentials::UsernameGenerator;
    ///
    /// // Four bytes of "日本" cut the second character: Go keeps its first byte.
    /// let g = UsernameGenerator::new().display_name("日本", 4).separator("-");
    /// assert_eq!(g.generate_bytes_from("R", 7), b"v-\xe6\x97\xa5\xe6-R-7");
    /// assert_eq!(g.generate_from("R", 7), "v-日\u{FFFD}-R-7");
    /// ```
    pub fn generate_bytes_from(&self, random: &str, unix_secs: i64) -> Vec<u8> {
        let now = unix_secs.to_string();
        let parts: [&[u8]; 5] = [
            b"v",
            &self.display_name,
            &self.role_name,
            random.as_bytes(),
            now.as_bytes(),
        ];
        let joined = if self.separator.is_empty() {
            parts.concat()
        } else {
            parts
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(self.separator.as_bytes())
        };
        let cut = truncate_part_bytes(&joined, self.max_length);
        match self.case {
            CaseOp::Keep => cut.to_vec(),
            CaseOp::Uppercase => super::gostr::to_upper_bytes(cut),
            CaseOp::Lowercase => super::gostr::to_lower_bytes(cut),
        }
    }
}
