//! AMQP 0-9-1 topic matching (SPEC §9.2), as a RabbitMQ topic exchange does it: keys and
//! patterns are `.`-separated words (a word may be empty, but the empty key is no words at
//! all, as RabbitMQ splits it), `*` matches exactly one word, `#` zero or more, anything
//! else itself. RabbitMQ does this matching for Pulse
//! messages; the GitHub path has no broker in between, so it matches here, the same way.
//!
//! Written by hand because no crate implements AMQP's rules (glob crates treat `*` as
//! "any characters" and know nothing of words); checked against RabbitMQ's behaviour by
//! the tests below and, end to end, by publishing the same keys through a real broker.

/// Whether `routing_key` matches `pattern`.
pub fn routing_key_matches(pattern: &str, routing_key: &str) -> bool {
    matches_words(&words(pattern), &words(routing_key))
}

fn words(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('.').collect()
    }
}

/// Dynamic programming over (pattern words, key words): `reachable[j]` says whether the
/// pattern read so far can have consumed exactly the first `j` key words. Linear in the
/// product of the lengths, so hostile patterns like `#.#.#.#.x` cannot blow up.
fn matches_words(pattern: &[&str], key: &[&str]) -> bool {
    let mut reachable = vec![false; key.len() + 1];
    reachable[0] = true;
    for word in pattern {
        let mut next = vec![false; key.len() + 1];
        match *word {
            "#" => {
                // Zero or more words: everything at or after the first reachable point.
                let mut any = false;
                for j in 0..=key.len() {
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            "*" => {
                for j in 0..key.len() {
                    next[j + 1] = reachable[j];
                }
            }
            literal => {
                for j in 0..key.len() {
                    next[j + 1] = reachable[j] && key[j] == literal;
                }
            }
        }
        reachable = next;
    }
    reachable[key.len()]
}

#[cfg(test)]
mod tests {
    use super::routing_key_matches as m;

    /// The cases, shared with the end-to-end test that publishes each key through a real
    /// RabbitMQ topic exchange and checks the broker routes it exactly as listed here.
    const CASES: &str = include_str!("topic_cases.json");

    #[test]
    fn spec_examples_empty_words_and_hashes_match_as_rabbitmq_does() {
        let cases: Vec<serde_json::Value> = serde_json::from_str(CASES).unwrap();
        assert!(cases.len() > 30);
        for case in cases {
            let (pattern, key) = (case["pattern"].as_str().unwrap(), case["key"].as_str().unwrap());
            assert_eq!(m(pattern, key), case["matches"].as_bool().unwrap(), "pattern {pattern:?} key {key:?}");
        }
    }

    #[test]
    fn the_empty_key_has_no_words_but_a_lone_dot_has_two() {
        assert!(!m("*", ""));
        assert!(m("*.*", "."));
        assert!(m("", ""));
    }

    #[test]
    fn many_hashes_stay_fast() {
        let pattern = vec!["#"; 200].join(".") + ".x";
        let key = vec!["a"; 200].join(".");
        assert!(!m(&pattern, &key));
        assert!(m(&pattern, &(key + ".x")));
    }
}
