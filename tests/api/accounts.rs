use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test]
async fn a_teacher_registers_logs_in_sees_themselves_and_logs_out() {
    let app = spawn_app().await;
    let registered = app.register("Ann@School.org").await;

    let res = app
        .post_json(
            "/api/auth/login",
            &json!({"email": "ann@school.org", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let login: Value = res.json().await.unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    assert_ne!(token, registered.token, "every login is its own session");
    // Milliseconds since the epoch, like every time the API and the protocol give.
    let expires_at = login["expires_at"].as_i64().unwrap();
    let ninety_days = 90 * 24 * 3600 * 1000;
    assert!(expires_at > now_ms() && expires_at <= now_ms() + ninety_days);
    let teacher = Teacher {
        token,
        email: registered.email.clone(),
    };

    let me: Value = app.get_json("/api/me", &teacher).await;
    assert_eq!(me["email"], "Ann@School.org");
    assert_eq!(me["name"], "Test Teacher");

    let res = app
        .as_teacher(Method::POST, "/api/auth/logout", &teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .as_teacher(Method::GET, "/api/me", &teacher)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let res = app
        .as_teacher(Method::GET, "/api/me", &registered)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "logging out ends only that session"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("bob@school.org").await;
    for email in ["bob@school.org", "nobody@school.org"] {
        let res = app
            .post_json(
                "/api/auth/login",
                &json!({"email": email, "password": "not the password"}),
            )
            .await;
        expect_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
}

#[tokio::test]
async fn an_address_registers_once_whatever_its_case() {
    let app = spawn_app().await;
    app.register("carol@school.org").await;
    let res = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "CAROL@school.org", "name": "Other", "password": "another password"}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn registration_can_be_closed_or_limited_to_school_domains() {
    let closed =
        spawn_with(|c| c.registration = Some(classcast::config::Registration::Closed)).await;
    let res = closed
        .post_json(
            "/api/auth/register",
            &json!({"email": "a@school.org", "name": "A", "password": "correct horse battery"}),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "registration_closed").await;

    let limited = spawn_with(|c| c.allowed_email_domains = vec!["School.org".into()]).await;
    let res = limited
        .post_json(
            "/api/auth/register",
            &json!({"email": "a@gmail.com", "name": "A", "password": "correct horse battery"}),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "email_domain_not_allowed").await;
}

/// Registers `email` with `password` on the server at `base`, from an address of its own.
async fn register_as(base: &str, email: &str, password: &str) -> reqwest::Response {
    fresh_client()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "name": "N", "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn where_registration_needs_approval_nobody_learns_which_addresses_exist() {
    let dir = tempfile::tempdir().unwrap();
    // The school's administrator exists already (the first account would need no approval).
    let added = cli(
        dir.path(),
        &["user", "add", "admin@school.org", "--name", "Admin"],
        "an admin's secret\n",
    );
    assert!(added.status.success(), "{added:?}");
    let server =
        crate::harness::Process::start_with(dir.path(), &["--allowed-email-domain", "school.org"]);
    let base = server.base.as_str();
    let first = register_as(base, "principal@school.org", "the real principal").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    // The same address again, by someone else: the very same answer, and nothing written.
    let again = register_as(base, "Principal@School.org", "an outsider's guess").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(first["status"], "pending");

    // Pending: no sign-in, answered like a wrong password.
    let login = |password: &'static str| {
        reqwest::Client::new()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": "principal@school.org", "password": password}))
            .send()
    };
    expect_error(
        login("the real principal").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let listing = cli(dir.path(), &["user", "list"], "");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("principal@school.org\tN\tpending"));

    let approved = cli(dir.path(), &["user", "approve", "principal@school.org"], "");
    assert!(approved.status.success(), "{approved:?}");
    assert_eq!(
        login("the real principal").await.unwrap().status(),
        StatusCode::OK
    );
    expect_error(
        login("an outsider's guess").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let twice = cli(dir.path(), &["user", "approve", "principal@school.org"], "");
    assert!(
        !twice.status.success(),
        "approving an active account says so"
    );
}

#[tokio::test]
async fn by_default_the_first_account_is_the_administrators_and_later_ones_wait() {
    let app = spawn_with(|c| c.registration = None).await;
    let first = register_as(&app.base, "admin@school.org", "correct horse battery").await;
    assert_eq!(
        first.status(),
        StatusCode::CREATED,
        "nobody could approve the first account"
    );
    let second = register_as(&app.base, "new@school.org", "correct horse battery").await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let second: Value = second.json().await.unwrap();
    let taken = register_as(&app.base, "ADMIN@school.org", "correct horse battery").await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    assert_eq!(
        taken.json::<Value>().await.unwrap(),
        second,
        "a taken address answers alike"
    );
}

#[tokio::test]
async fn registrations_from_one_address_are_limited() {
    let app = spawn_app().await;
    let client = TestApp::client_at("127.0.0.5");
    let mut refused = None;
    for i in 0..15 {
        let res = client
            .post(format!("{}/api/auth/register", app.base))
            .json(&json!({"email": format!("bulk{i}@school.org"), "name": "B", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, res));
            break;
        }
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let (i, res) = refused.expect("15 registrations from one address all went through");
    assert_eq!(i, 10, "ten at once, then one a minute");
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn repeated_failed_logins_are_refused_with_retry_after() {
    let app = spawn_app().await;
    app.register("dave@school.org").await;
    let mut refused = None;
    for attempt in 0..50 {
        let res = app
            .post_json(
                "/api/auth/login",
                &json!({"email": "dave@school.org", "password": format!("guess {attempt}")}),
            )
            .await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((attempt, res));
            break;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let (attempt, res) = refused.expect("the limiter refuses a guessing loop");
    assert!(attempt <= 10, "refused only after {attempt} guesses");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    let res = app
        .post_json(
            "/api/auth/login",
            &json!({"email": "dave@school.org", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
}

#[tokio::test]
async fn a_session_near_its_end_hands_the_client_a_fresh_token() {
    let app = spawn_with(|c| {
        // A renewal window longer than the lifetime: every request is "near the end".
        c.session_ttl_secs = Some(3600);
        c.session_renew_secs = Some(7200);
    })
    .await;
    let teacher = app.register("erin@school.org").await;
    let res = app
        .as_teacher(Method::GET, "/api/me", &teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = res.headers()["x-classcast-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(res.headers().contains_key("x-classcast-token-expires"));
    assert_ne!(fresh, teacher.token);
    let renewed = Teacher {
        token: fresh,
        email: teacher.email.clone(),
    };
    let res = app
        .as_teacher(Method::GET, "/api/me", &renewed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A client that goes on using the old token is not handed (nor are rows written for) a
    // new one on every request: once an hour at most.
    for _ in 0..20 {
        let res = app
            .as_teacher(Method::GET, "/api/me", &teacher)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!res.headers().contains_key("x-classcast-token"));
    }
    let sessions = app.count("SELECT COUNT(*) FROM session").await;
    assert_eq!(
        sessions, 3,
        "the login, its renewal, and the renewal's own renewal"
    );
}

#[tokio::test]
async fn a_session_far_from_its_end_is_not_renewed() {
    let app = spawn_app().await;
    let teacher = app.register("fay@school.org").await;
    let res = app
        .as_teacher(Method::GET, "/api/me", &teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("x-classcast-token"));
}

#[tokio::test]
async fn a_garbage_or_missing_token_is_unauthorized() {
    let app = spawn_app().await;
    for auth in [
        None,
        Some("Bearer nonsense"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = app.request(Method::GET, "/api/me");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        expect_error(
            req.send().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
}

#[tokio::test]
async fn a_login_storm_queues_for_hashing_and_the_overflow_is_told_to_retry() {
    // Hashing slots are held for tens of milliseconds each; with a 1 ms queueing deadline,
    // a crowd arriving at once cannot all get one.
    let app = spawn_with(|c| c.hash_wait_ms = Some(1)).await;
    let bodies: Vec<_> = (0..24)
        .map(|i| json!({"email": format!("storm{i}@school.org"), "name": "S", "password": "correct horse battery"}))
        .collect();
    let attempts = bodies.iter().map(|body| {
        let req = fresh_client()
            .post(format!("{}/api/auth/register", app.base))
            .json(body);
        async move { req.send().await.unwrap() }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let created = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    let busy: Vec<_> = answers
        .into_iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(created >= 1, "some registrations get through");
    assert_eq!(created + busy.len(), 24, "every other answer is a 503");
    assert!(
        !busy.is_empty(),
        "the overflow is refused, not queued forever"
    );
    for res in busy {
        assert!(res.headers().contains_key("retry-after"));
        expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
}

#[tokio::test]
async fn common_empty_or_self_describing_passwords_are_refused() {
    let app = spawn_app().await;
    for weak in [
        "12345678",
        "password",
        "Password123",
        "        ",
        "\0\0\0\0\0\0\0\0",
        "tab\tinside it",
        "ann.lee@school.org",
        "ANN.LEE",
    ] {
        let res = app
            .post_json(
                "/api/auth/register",
                &json!({"email": "ann.lee@school.org", "name": "Ann", "password": weak}),
            )
            .await;
        let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(error["fields"]["password"].is_string(), "{weak:?}: {error}");
    }
    // None of the refusals created the account.
    app.register("ann.lee@school.org").await;
}

/// `/api/me` as `teacher`: its status and the renewed token it handed out, if any.
async fn me_renewing(app: &TestApp, teacher: &Teacher) -> (StatusCode, Option<(String, String)>) {
    let res = app
        .as_teacher(Method::GET, "/api/me", teacher)
        .send()
        .await
        .unwrap();
    let header = |name: &str| Some(res.headers().get(name)?.to_str().ok()?.to_owned());
    let renewed = header("x-classcast-token").zip(header("x-classcast-token-expires"));
    (res.status(), renewed)
}

#[tokio::test]
async fn logging_out_ends_the_tokens_renewed_from_the_session_too() {
    let app = spawn_with(|c| {
        c.session_ttl_secs = Some(3600);
        c.session_renew_secs = Some(7200);
    })
    .await;
    for logout_with_renewed in [true, false] {
        let original = app
            .register(&format!("gil{logout_with_renewed}@school.org"))
            .await;
        let (_, renewed) = me_renewing(&app, &original).await;
        let renewed = Teacher {
            token: renewed.expect("renewed").0,
            email: original.email.clone(),
        };
        let who = if logout_with_renewed {
            &renewed
        } else {
            &original
        };
        let res = app
            .as_teacher(Method::POST, "/api/auth/logout", who)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        for token in [&original, &renewed] {
            assert_eq!(
                me_renewing(&app, token).await.0,
                StatusCode::UNAUTHORIZED,
                "a token of the signed-out family still works"
            );
        }
    }
}

#[tokio::test]
async fn renewals_never_reach_past_the_absolute_lifetime() {
    // Every request is within the renewal window, but the login may last no longer than
    // its first token: no renewal can extend it.
    let app = spawn_with(|c| {
        c.session_ttl_secs = Some(3600);
        c.session_renew_secs = Some(7200);
        c.session_max_age_secs = Some(3600);
    })
    .await;
    let teacher = app.register("hal@school.org").await;
    let (status, renewed) = me_renewing(&app, &teacher).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renewed, None, "renewed past the absolute lifetime");
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> StatusCode {
    let mut req = client
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({"email": email, "password": password}));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn guessing_from_elsewhere_does_not_lock_the_owner_out_of_their_own_address() {
    let app = spawn_app().await;
    app.register("owner@school.org").await;
    let home = TestApp::client_at("127.0.0.2");
    let right = "correct horse battery";
    assert_eq!(
        login_from(&app, &home, "owner@school.org", right, None).await,
        StatusCode::OK
    );
    // Guesses from four other addresses, until every one of them is refused.
    for a in 3..7 {
        let away = TestApp::client_at(&format!("127.0.0.{a}"));
        let mut refused = false;
        for g in 0..15 {
            let status =
                login_from(&app, &away, "owner@school.org", &format!("guess {g}"), None).await;
            refused |= status == StatusCode::TOO_MANY_REQUESTS;
        }
        assert!(refused, "15 guesses from 127.0.0.{a} were all checked");
    }
    assert_eq!(
        login_from(&app, &home, "owner@school.org", right, None).await,
        StatusCode::OK,
        "the owner was locked out by others' guesses"
    );
}

#[tokio::test]
async fn right_passwords_spend_no_login_budget() {
    // A school behind one address at 8:30: many sign-ins, all right, none refused.
    let app = spawn_app().await;
    app.register("busy@school.org").await;
    for i in 0..35 {
        let res = app
            .post_json(
                "/api/auth/login",
                &json!({"email": "busy@school.org", "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "sign-in {i}");
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let app = spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    app.register("ida@school.org").await;
    let proxy = &app.client;
    let guess = |client: &reqwest::Client, forwarded: &'static str, g: u32| {
        let client = client.clone();
        let app = &app;
        async move {
            login_from(
                app,
                &client,
                "ida@school.org",
                &format!("guess {g}"),
                Some(forwarded),
            )
            .await
        }
    };
    // One client behind the proxy guesses until refused...
    let mut first_refusal = None;
    for g in 0..12 {
        if guess(proxy, "203.0.113.1", g).await == StatusCode::TOO_MANY_REQUESTS {
            first_refusal = Some(g);
            break;
        }
    }
    assert_eq!(
        first_refusal,
        Some(10),
        "the pair budget is 10 wrong guesses"
    );
    // ...while another client behind the same proxy keeps its own budget.
    assert_eq!(
        guess(proxy, "203.0.113.2", 0).await,
        StatusCode::UNAUTHORIZED
    );
    // A client that is not a trusted proxy cannot claim to be someone else.
    let stranger = TestApp::client_at("127.0.0.9");
    for g in 0..10 {
        guess(&stranger, "203.0.113.3", g).await;
    }
    assert_eq!(
        guess(&stranger, "203.0.113.4", 10).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged X-Forwarded-For bought a fresh budget"
    );
}

#[tokio::test]
async fn addresses_of_one_ipv6_network_share_one_budget() {
    let app = spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let claim_from = |forwarded: String| {
        let app = &app;
        async move {
            app.request(Method::POST, "/api/boards/claim")
                .header("x-forwarded-for", forwarded)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // 60 board claims at once per address: each from a new address of one /64...
    for host in 1..=60 {
        assert_eq!(
            claim_from(format!("2001:db8:0:1::{host:x}")).await,
            StatusCode::CREATED
        );
    }
    // ...spend the budget of the whole /64, not of each address.
    assert_eq!(
        claim_from("2001:db8:0:1:ffff::1".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        claim_from("2001:db8:0:2::1".into()).await,
        StatusCode::CREATED,
        "another /64 has its own"
    );
}
