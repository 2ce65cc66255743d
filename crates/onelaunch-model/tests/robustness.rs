//! Every parser must answer with a value or an error, never panic, whatever the bytes.

use onelaunch_model::{
    attachment_sources, classify, fixtures_by_result, is_safe_source, parse_categories,
    parse_container, parse_environment_properties, parse_environment_xml, parse_executor,
    parse_junit, parse_result, testplan, to_upload,
};

const SAMPLES: [&str; 7] = [
    r#"{"uuid":"u","name":"n","status":"passed","start":1,"stop":2,"statusDetails":{"message":"m"},
        "steps":[{"name":"s","attachments":[{"name":"a","source":"a.txt","type":"text/plain"}],"steps":[{"name":"t"}]}],
        "labels":[{"name":"host","value":"h"}],"links":[{"url":"u"}],"parameters":[{"name":"p","value":"v","mode":"hidden"}]}"#,
    r#"{"uuid":"c","children":["u","d"],"befores":[{"name":"b","start":1}],"afters":[{"name":"a"}]}"#,
    r#"[{"name":"x","matchedStatuses":["failed"],"flaky":true}]"#,
    r#"{"name":"n","buildOrder":3,"reportUrl":"r"}"#,
    r#"{"version":"1.0","tests":[{"id":"1","selector":"a.b"}]}"#,
    r#"<testsuites><testsuite name="s" timestamp="2024-01-01T00:00:00"><testcase classname="c" name="n" time="0.5"><failure message="m">t&amp;<![CDATA[x]]></failure></testcase></testsuite></testsuites>"#,
    "<environment><parameter><key>k</key><value>v</value></parameter></environment>\na=b\\\n c\n",
];

/// A small deterministic generator (xorshift64*), so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn exercise(bytes: &[u8]) {
    if let Ok(r) = parse_result(bytes) {
        let _ = to_upload(&r);
        let _ = attachment_sources(&r);
    }
    if let Ok(c) = parse_container(bytes) {
        let _ = fixtures_by_result(&[c]);
    }
    let _ = parse_categories(bytes);
    let _ = parse_executor(bytes);
    let _ = testplan::parse(bytes);
    if let Ok(rs) = parse_junit(bytes, "origin") {
        rs.iter().for_each(|r| drop(to_upload(r)));
    }
    let _ = parse_environment_xml(bytes);
    let _ = parse_environment_properties(bytes);
    let text = String::from_utf8_lossy(bytes);
    let _ = classify(&text);
    let _ = is_safe_source(&text);
}

#[test]
fn truncations_never_panic() {
    for sample in SAMPLES {
        let bytes = sample.as_bytes();
        for cut in 0..=bytes.len() {
            exercise(&bytes[..cut]);
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    const INTERESTING: &[u8] = b"{}[]<>\"\\:,=/&;!-#.0123456789eE+ \n\t\0\xFF\xC3\xA9";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for sample in SAMPLES {
        for _ in 0..1500 {
            let mut bytes = sample.as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() + 1);
                let byte = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            exercise(&bytes);
        }
    }
}
