use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::helpers::spawn_app;

fn doc(tag: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ticket alert="false" source="API" topicId="20">
  <name>Xml Person</name>
  <email>{tag}@example.com</email>
  <subject><![CDATA[Printer & "friends"]]></subject>
  <phone ext="77">(318) 555-8634</phone>
  <serial_number>SN-1</serial_number>
  <severity>Major</severity>
  <message type="text/html"><![CDATA[<p>Hello <b>there</b><script>x()</script></p>]]></message>
  <attachments>
    <file name="a.txt" type="text/plain">
        trimmed text
    </file>
    <file name="b.bin" type="application/octet-stream" encoding="base64">AAECAw==</file>
  </attachments>
</ticket>"#
    )
}

#[tokio::test]
async fn xml_ticket_reads_back_like_json() {
    let app = spawn_app().await;
    let n = app
        .post_raw("/api/tickets.xml", doc("xml-full").into_bytes())
        .await
        .number();
    let t = app.get_ticket(&n).await;
    assert_eq!(t["subject"], json!("Printer & \"friends\""));
    assert_eq!(t["topic"]["id"], json!(20));
    assert_eq!(
        t["fields"],
        json!({"phone": "3185558634X77", "serial_number": "SN-1", "severity": "sev2"})
    );
    let e = &t["thread"][0];
    assert_eq!(
        (e["format"].as_str(), e["body"].as_str()),
        (Some("html"), Some("<p>Hello <b>there</b></p>"))
    );
    assert_eq!(e["attachments"][0]["size"], json!(12));
    assert_eq!(e["attachments"][1]["size"], json!(4));
    assert_eq!(
        e["attachments"][1]["type"],
        json!("application/octet-stream")
    );
}

#[tokio::test]
async fn attributes_elements_and_cdata_store_the_same_ticket() {
    let app = spawn_app().await;
    let forms = [
        r#"<ticket name="Same" email="same@example.com" subject="S &amp; T" priority="3"><message>m</message></ticket>"#,
        r#"<ticket><name>Same</name><email>same@example.com</email><subject>S &amp; T</subject><priority>3</priority><message>m</message></ticket>"#,
        r#"<ticket><name><![CDATA[Same]]></name><email><![CDATA[same@example.com]]></email><subject><![CDATA[S & T]]></subject><priority><![CDATA[3]]></priority><message><![CDATA[m]]></message></ticket>"#,
    ];
    let mut seen = Vec::new();
    for f in forms {
        let n = app
            .post_raw("/api/tickets.xml", f.as_bytes().to_vec())
            .await
            .number();
        let mut t = app.get_ticket(&n).await;
        for k in ["number", "created", "notifications"] {
            t.as_object_mut().unwrap().remove(k);
        }
        t["thread"][0].as_object_mut().unwrap().remove("created");
        seen.push(t);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    assert_eq!(seen[0]["priority"]["id"], json!(3));
}

#[tokio::test]
async fn declared_encodings_are_converted_to_utf8() {
    let app = spawn_app().await;
    let latin1 = |s: &str| s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>();
    let mut body = latin1(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ticket><name>José Müller</name><email>enc1@example.com</email><subject>Café</subject><message>Grüße</message></ticket>",
    );
    let n = app
        .post_raw("/api/tickets.xml", body.clone())
        .await
        .number();
    let t = app.get_ticket(&n).await;
    assert_eq!(
        (t["user"]["name"].as_str(), t["subject"].as_str()),
        (Some("José Müller"), Some("Café"))
    );
    // windows-1252: the euro sign is 0x80.
    body = b"<?xml version='1.0' encoding='windows-1252'?><ticket><name>W</name><email>enc2@example.com</email><subject>5 \x80</subject><message>m</message></ticket>".to_vec();
    let n = app.post_raw("/api/tickets.xml", body).await.number();
    assert_eq!(app.get_ticket(&n).await["subject"], json!("5 €"));
    // UTF-16 with a byte-order mark.
    let mut utf16 = vec![0xff, 0xfe];
    for u in "<ticket><name>Ω</name><email>enc3@example.com</email><subject>Ωmega</subject><message>m</message></ticket>".encode_utf16() {
        utf16.extend(u.to_le_bytes());
    }
    let n = app.post_raw("/api/tickets.xml", utf16).await.number();
    assert_eq!(app.get_ticket(&n).await["subject"], json!("Ωmega"));
}

#[tokio::test]
async fn unsafe_or_malformed_xml_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let before = app.counts().await;
    let t = "<name>X</name><email>bad@example.com</email><subject>s</subject>";
    let cases = vec![
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE ticket [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><ticket>{t}<message>&b;</message></ticket>"
        ),
        format!(
            "<!DOCTYPE ticket [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><ticket>{t}<message>&xxe;</message></ticket>"
        ),
        format!(
            "<!DOCTYPE ticket [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]><ticket>{t}<message>m</message></ticket>"
        ),
        format!(
            "<!DOCTYPE ticket PUBLIC \"-//X//Y\" \"http://127.0.0.1:1/x.dtd\"><ticket>{t}<message>m</message></ticket>"
        ),
        format!("<ticket>{t}<message>&undefined;</message></ticket>"),
        format!("<ticket>{t}<message>m</ticket>"),
        format!("<tickets>{t}<message>m</message></tickets>"),
        format!("<ticket>{t}<message>m</message><shoe_size>44</shoe_size></ticket>"),
        format!(
            "<ticket>{t}<message>m</message><attachments><file name=\"bad.bin\" encoding=\"base64\">not base64!</file></attachments></ticket>"
        ),
        format!(
            "<ticket>{t}<message>{}m{}</message></ticket>",
            "<b>".repeat(50),
            "</b>".repeat(50)
        ),
        format!("<ticket>{t}</ticket>"),
        String::new(),
    ];
    for body in cases {
        let r = app
            .post_raw("/api/tickets.xml", body.clone().into_bytes())
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = app
        .post_raw(
            "/api/tickets.xml",
            b"<ticket>\n<name>x</name>\n<subject>y</ticket>".to_vec(),
        )
        .await;
    assert!(r.body.contains("line 3"), "{}", r.body);
    let mut huge = format!("<ticket>{t}<message>");
    huge.push_str(&"A".repeat(11 * 1024 * 1024));
    huge.push_str("</message></ticket>");
    assert_eq!(
        app.post_raw("/api/tickets.xml", huge.into_bytes())
            .await
            .status,
        413
    );
    assert_eq!(app.counts().await, before);
}

/// Random mutations of a valid document: the server answers 201 or a
/// 4xx, never a 5xx or a dropped connection, and stores exactly one
/// ticket per 201 (never a partial one).
#[tokio::test]
async fn mutated_xml_never_fails_the_server_or_stores_partially() {
    let app = spawn_app().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0_1de5c);
    let mut created = 0i64;
    for i in 0..300 {
        let mut bytes = doc(&format!("mut{i}")).into_bytes();
        for _ in 0..rng.random_range(1..6) {
            let pos = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes[pos] = rng.random(),
                1 => {
                    bytes.remove(pos);
                }
                2 => bytes.insert(pos, *b"<>&;\"'/![]".get(rng.random_range(0..10)).unwrap()),
                _ => bytes.truncate(pos.max(1)),
            }
        }
        let r = app.post_raw("/api/tickets.xml", bytes).await;
        assert!(
            r.status == 201 || (400..500).contains(&r.status),
            "status {}: {}",
            r.status,
            r.body
        );
        if r.status == 201 {
            created += 1;
        }
    }
    let counts: std::collections::HashMap<_, _> = app.counts().await.into_iter().collect();
    assert_eq!(counts["tickets"], created);
    assert_eq!(counts["thread_entries"], created);
}
