use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let app = spawn_app().await;
    for page in [
        "/login",
        "/lessons",
        &format!("/lessons/{}", uuid::Uuid::now_v7()),
    ] {
        let res = app.request(Method::GET, page).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-cache");
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = res.text().await.unwrap();
        assert!(!html.contains("{{assets}}"));
        for tag in html.split("<script").skip(1) {
            let open_tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            assert!(
                open_tag.contains(" src="),
                "inline script in {page}: <script{open_tag}>"
            );
        }
        assert!(
            !html.contains("<style") && !html.contains(" style=") && !has_event_handler(&html),
            "no inline style or event handler in {page}"
        );
    }
}

#[tokio::test]
async fn assets_are_cached_for_a_year_under_their_build_and_revalidate_cheaply() {
    let app = spawn_app().await;
    let html = app
        .request(Method::GET, "/login")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html
        .find("/assets/")
        .expect("the page references its assets");
    let end = start + html[start..].find('"').unwrap();
    let asset = &html[start..end];
    let res = app.request(Method::GET, asset).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{asset}");
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = res.headers()["etag"].clone();

    let res = app
        .request(Method::GET, asset)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let res = app
        .request(Method::GET, "/assets/0000/js/none.js")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn translations_exist_for_english_and_dutch_with_the_same_keys() {
    let app = spawn_app().await;
    let html = app
        .request(Method::GET, "/login")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("/assets/").unwrap();
    let base_end = start + "/assets/".len() + html[start + "/assets/".len()..].find('/').unwrap();
    let base = &html[start..base_end];
    let mut keys = Vec::new();
    for lang in ["en", "nl"] {
        let res = app
            .request(Method::GET, &format!("{base}/i18n/{lang}.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{lang}");
        let dict: Value = res.json().await.unwrap();
        let mut k: Vec<String> = dict.as_object().unwrap().keys().cloned().collect();
        k.sort();
        assert!(k.len() > 20, "{lang} has only {} texts", k.len());
        keys.push(k);
    }
    assert_eq!(
        keys[0], keys[1],
        "every English text has a Dutch one and back"
    );
}

#[tokio::test]
async fn the_client_configuration_names_the_api_hosts_and_timeout() {
    let app = spawn_app().await;
    let config: Value = app.public_json("/config.json").await;
    assert_eq!(config["api_hosts"], serde_json::json!([""]));
    assert_eq!(config["request_timeout_ms"], 10_000);

    let app = spawn_with(|c| {
        c.api_hosts = vec![
            "https://a.example.org/".into(),
            "https://b.example.org".into(),
        ];
        c.request_timeout_ms = Some(15_000);
    })
    .await;
    let res = app
        .request(Method::GET, "/config.json")
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let config: Value = res.json().await.unwrap();
    assert_eq!(
        config["api_hosts"],
        serde_json::json!(["https://a.example.org", "https://b.example.org"])
    );
    assert_eq!(config["request_timeout_ms"], 15_000);
    assert!(
        csp.contains("connect-src 'self' https://a.example.org wss://a.example.org https://b.example.org wss://b.example.org"),
        "{csp}"
    );
}

#[tokio::test]
async fn health_and_readiness_answer_and_the_root_leads_to_the_lessons() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.request(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    // Anyone may read it: it names the database's place, not the server's folders.
    let ready: serde_json::Value = app.public_json("/readyz").await;
    assert_eq!(ready["databases"][0]["url"], "sqlite://…/classcast.db");
    let text = ready.to_string();
    let folder = app.data_dir().display().to_string();
    assert!(!text.contains(&folder), "{text}");
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection());
    assert_eq!(res.headers()["location"], "/lessons");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].to_str().unwrap().len(), 36);
}

/// Whether the markup has an attribute like ` onclick=`: inline script by another name.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let name: String = html[i + 3..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        !name.is_empty() && html[i + 3 + name.len()..].starts_with('=')
    })
}
