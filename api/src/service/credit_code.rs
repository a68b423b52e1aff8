//! The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from a
//! 31-letter alphabet, the last one a check character over the first 17.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters, if they are all in the alphabet.
pub fn check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in bytes.iter().zip(WEIGHTS) {
        sum += value_of(*c)? * w;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

/// Normalizes (trim, upper-case) and validates a code; the error says what is wrong.
pub fn normalize(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.chars().count() != 18 {
        return Err("a unified social credit code has 18 characters".into());
    }
    if let Some(bad) = code.bytes().find(|b| value_of(*b).is_none()) {
        return Err(format!("`{}` is not allowed in a unified social credit code", bad as char));
    }
    if !code[2..8].bytes().all(|b| b.is_ascii_digit()) {
        return Err("characters 3 to 8 must be the digits of an administrative division".into());
    }
    match check_char(&code[..17]) {
        Some(expected) if code.ends_with(expected) => Ok(code),
        _ => Err("the check character does not match: the code has a typo".into()),
    }
}
