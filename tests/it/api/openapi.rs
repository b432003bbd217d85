//! The OpenAPI document: in step with the code, and complete.

use super::*;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    let generated = kenar_hook::api::openapi::document();
    assert!(
        committed == generated,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/webhooks/divar",
        "/callbacks/divar",
        "/callbacks/divar/dynamic-action",
        "/api/v1/conversations",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/events",
        "/api/v1/clicks",
        "/api/v1/stream",
        "/api/v1/registrations",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
}

/// Every answer a route can give is listed, so generated clients handle them: the
/// middleware's too, and each query parameter's enum, format and bounds.
#[test]
fn the_openapi_document_lists_every_answer_and_parameter_shape() {
    let doc: Value = serde_json::from_str(&kenar_hook::api::openapi::document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/openapi.json"));
    assert!(paths.contains_key("/api/v1/stream/tickets"));
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["408"];
            if path.starts_with("/api/v1/") {
                expected.extend(["400", "401", "429", "503"]);
            }
            if path.starts_with("/webhooks/") || path.starts_with("/callbacks/") {
                expected.extend(["401", "413", "429"]);
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lists {status}"
                );
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                match parameter["name"].as_str().unwrap() {
                    "limit" => {
                        assert_eq!(schema["minimum"], 1, "{path}");
                        assert_eq!(schema["maximum"], 500, "{path}");
                    }
                    "since" | "until" => assert_eq!(schema["format"], "date-time", "{path}"),
                    "order" | "sender_side" => assert!(schema["enum"].is_array(), "{path}"),
                    "type" if !path.ends_with("/events") => {
                        assert!(schema["enum"].as_array().unwrap().contains(&json!("TEXT")))
                    }
                    _ => {}
                }
            }
        }
    }
}
