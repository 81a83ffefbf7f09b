//! Topic names: Kafka's rules, which also keep every name inside the data directory.

use kafka_protocol::ResponseError;

use crate::error::{Error, Result};

/// Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::api(
            ResponseError::InvalidTopicException,
            format!("topic name {name:?} {why}"),
        ))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > 249 {
        return bad("is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("is not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("may only hold ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Kafka refuses topics whose names differ only in '.' versus '_' (metric names collide).
pub(super) fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../etc", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
