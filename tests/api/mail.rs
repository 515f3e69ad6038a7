//! Mail through the outbox, against a real SMTP server on loopback: a forgotten password set
//! again with a mailed link, addresses confirmed by mail, and a stalled mail server that
//! delays mail but never a request.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::eventually::eventually;
use crate::harness::*;
use crate::live::{classroom, Ws};
use crate::smtp::SmtpServer;

const PUBLIC_URL: &str = "https://classcast.school.example";
const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new secret";
/// Mail is sent within seconds; a retry after a failure within a minute.
const MAIL_ARRIVES: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_millis(50);

/// A server that mails through `smtp`, registration as configured by `adjust` (by default
/// what a server with mail does: `confirm`).
async fn mailing(
    smtp: &SmtpServer,
    adjust: impl FnOnce(&mut classcast::config::ServeArgs),
) -> TestApp {
    spawn_with(|a| {
        a.smtp_url = Some(smtp.url());
        a.public_url = Some(PUBLIC_URL.into());
        a.registration = None;
        adjust(a);
    })
    .await
}

async fn post(path: &str, app: &TestApp, body: Value) -> reqwest::Response {
    fresh_client()
        .post(format!("{}{path}", app.base))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The one mail `address` received whose subject is `subject`, once it has arrived.
async fn mail_to(smtp: &SmtpServer, address: &str, subject: &str) -> crate::smtp::Received {
    eventually!(MAIL_ARRIVES, EVERY, {
        let mails: Vec<_> = smtp
            .to(address)
            .into_iter()
            .filter(|m| m.data.contains(&format!("Subject: {subject}")))
            .collect();
        match mails.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(format!("no mail \"{subject}\" to {address}")),
            more => Err(format!("{} mails \"{subject}\" to {address}", more.len())),
        }
    })
}

/// The token of the link after `marker` in `mail`, checked to point at the public address.
fn link(mail: &crate::smtp::Received, marker: &str) -> String {
    let url = mail
        .after(&format!("{PUBLIC_URL}/login{marker}"))
        .unwrap_or_else(|| panic!("a link to {PUBLIC_URL}/login{marker} in {}", mail.data));
    assert!(url.len() >= 32, "a long random token: {url}");
    url
}

async fn client_config(app: &TestApp) -> Value {
    let res = app
        .request(Method::GET, "/config.json")
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.request(Method::GET, "/api/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    post(
        "/api/auth/login",
        app,
        json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test]
async fn a_forgotten_password_is_set_again_with_the_mailed_link_and_every_session_ends() {
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |a| {
        a.registration = Some(classcast::config::Registration::Open)
    })
    .await;
    let config = client_config(&app).await;
    assert_eq!(
        config["mail"], true,
        "the sign-in page offers a reset: {config}"
    );
    let (t, board, lesson) = classroom(&app).await;
    let _screen = Ws::board(&app, &board).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    // An address without an account gets the very same answer, and no mail.
    let stranger = post(
        "/api/auth/password-reset",
        &app,
        json!({"email": "nobody@school.org"}),
    )
    .await;
    assert_eq!(stranger.status(), StatusCode::ACCEPTED);
    let stranger: Value = stranger.json().await.unwrap();
    let asked = post(
        "/api/auth/password-reset",
        &app,
        json!({"email": "Teacher@School.org"}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    assert_eq!(asked.json::<Value>().await.unwrap(), stranger);

    let mail = mail_to(&smtp, &t.email, "Set a new classcast password").await;
    assert!(mail.data.contains("30 minutes"), "{}", mail.data);
    assert!(
        mail.data.contains("Content-Type: text/html"),
        "an HTML part too"
    );
    let token = link(&mail, "#reset=");
    assert!(smtp.to("nobody@school.org").is_empty());

    // A password the rules refuse leaves the link usable.
    let weak = post(
        "/api/auth/password-reset/confirm",
        &app,
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let set = post(
        "/api/auth/password-reset/confirm",
        &app,
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);
    let session: Value = set.json().await.unwrap();
    let new_token = session["token"].as_str().unwrap();

    assert_eq!(
        me(&app, &t.token).await,
        StatusCode::UNAUTHORIZED,
        "the old session ended"
    );
    assert_eq!(
        console.close_code().await,
        4403,
        "and its live connection with it"
    );
    assert_eq!(me(&app, new_token).await, StatusCode::OK);
    assert_eq!(
        login(&app, &t.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, &t.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );

    let again = post(
        "/api/auth/password-reset/confirm",
        &app,
        json!({"token": token, "password": "yet another secret"}),
    )
    .await;
    expect_error(again, StatusCode::FORBIDDEN, "link_invalid").await;
    let forged = post(
        "/api/auth/password-reset/confirm",
        &app,
        json!({"token": "not-a-token", "password": NEW_PASSWORD}),
    )
    .await;
    expect_error(forged, StatusCode::FORBIDDEN, "link_invalid").await;
}

#[tokio::test]
async fn mail_is_written_in_the_language_the_page_or_the_browser_asks_for() {
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |a| {
        a.registration = Some(classcast::config::Registration::Open)
    })
    .await;
    app.register("anna@school.org").await;
    app.register("bram@school.org").await;
    let asked = fresh_client()
        .post(format!("{}/api/auth/password-reset", app.base))
        .header("accept-language", "nl-NL,nl;q=0.9,en;q=0.8")
        .json(&json!({"email": "anna@school.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let asked = post(
        "/api/auth/password-reset",
        &app,
        json!({"email": "bram@school.org", "language": "nl"}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    for address in ["anna@school.org", "bram@school.org"] {
        let mail = mail_to(&smtp, address, "Een nieuw wachtwoord voor classcast").await;
        link(&mail, "#reset=");
    }
}

#[tokio::test]
async fn a_new_account_signs_in_once_its_address_is_confirmed() {
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |_| {}).await;
    let body = json!({"email": "new@school.org", "name": "New Teacher", "password": PASSWORD});
    let registered = post("/api/auth/register", &app, body.clone()).await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let answer: Value = registered.json().await.unwrap();
    assert_eq!(answer["awaiting"], "confirmation", "{answer}");
    expect_error(
        login(&app, "new@school.org", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    let mail = mail_to(
        &smtp,
        "new@school.org",
        "Confirm your address for classcast",
    )
    .await;
    let token = link(&mail, "#confirm=");
    let confirmed = post("/api/auth/confirm", &app, json!({"token": token})).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let session: Value = confirmed.json().await.unwrap();
    assert_eq!(
        me(&app, session["token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    assert_eq!(
        login(&app, "new@school.org", PASSWORD).await.status(),
        StatusCode::OK
    );
    let twice = post("/api/auth/confirm", &app, json!({"token": token})).await;
    expect_error(twice, StatusCode::FORBIDDEN, "link_invalid").await;

    // Registering the address again is answered as the first time; its owner is told.
    let again = post(
        "/api/auth/register",
        &app,
        json!({"email": "new@school.org", "name": "Someone", "password": "another password"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.json::<Value>().await.unwrap(), answer);
    let told = mail_to(&smtp, "new@school.org", "Your classcast account").await;
    assert!(
        told.data.contains(&format!("{PUBLIC_URL}/login")),
        "{}",
        told.data
    );
    assert_eq!(
        login(&app, "new@school.org", PASSWORD).await.status(),
        StatusCode::OK,
        "the owner's password stays"
    );
}

#[tokio::test]
async fn a_refused_recipient_ends_dead_with_its_reason_and_can_be_sent_again() {
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |_| {}).await;
    smtp.refuse("gone@school.org");
    let body = json!({"email": "gone@school.org", "name": "Gone", "password": PASSWORD});
    assert_eq!(
        post("/api/auth/register", &app, body).await.status(),
        StatusCode::ACCEPTED
    );

    let status = eventually!(MAIL_ARRIVES, EVERY, {
        let out = cli(app.data_dir(), &["mail", "status"], "");
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        match said.lines().next() {
            Some(first) if first.contains("1 dead") => Ok((out, said)),
            _ => Err(format!("no dead mail yet: {said}")),
        }
    });
    let (out, said) = status;
    assert!(
        !out.status.success(),
        "dead mail makes `mail status` fail: {out:?}"
    );
    assert!(said.contains("gone@school.org"), "{said}");
    assert!(
        said.contains("550") && said.contains("No such user here"),
        "the server's reason: {said}"
    );
    let id = said
        .lines()
        .find(|l| l.starts_with("dead"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("the dead mail's id")
        .to_owned();

    smtp.accept("gone@school.org");
    let retried = cli(app.data_dir(), &["mail", "retry", &id], "");
    assert!(retried.status.success(), "{retried:?}");
    mail_to(
        &smtp,
        "gone@school.org",
        "Confirm your address for classcast",
    )
    .await;
    let out = cli(app.data_dir(), &["mail", "retry", &id], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was sent already"),
        "{out:?}"
    );
    let unknown = cli(
        app.data_dir(),
        &["mail", "retry", "0193a0b0-0000-7000-8000-000000000000"],
        "",
    );
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no mail with the id"),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn without_a_mail_server_nothing_is_mailed_and_the_page_offers_no_reset() {
    let app = spawn_app().await;
    let config = client_config(&app).await;
    assert_eq!(config["mail"], false, "{config}");
    let asked = post(
        "/api/auth/password-reset",
        &app,
        json!({"email": "a@school.org"}),
    )
    .await;
    let error = expect_error(asked, StatusCode::NOT_FOUND, "mail_not_configured").await;
    assert!(
        error["message"].as_str().unwrap().contains("administrator"),
        "{error}"
    );
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Times of `n` reset requests (for `accounts`) and `n` registrations (of fresh addresses
/// starting `fresh`), one after another, and of a teacher's ordinary API call after each.
async fn requests(
    app: &TestApp,
    accounts: &[String],
    fresh: &str,
    teacher: &Teacher,
) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let (mut resets, mut registrations, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for (n, address) in accounts.iter().enumerate() {
        let started = Instant::now();
        let res = post("/api/auth/password-reset", app, json!({"email": address})).await;
        resets.push(started.elapsed());
        assert_eq!(res.status(), StatusCode::ACCEPTED);

        let body =
            json!({"email": format!("{fresh}{n}@school.org"), "name": "New", "password": PASSWORD});
        let started = Instant::now();
        let res = post("/api/auth/register", app, body).await;
        registrations.push(started.elapsed());
        assert_eq!(res.status(), StatusCode::ACCEPTED);

        let started = Instant::now();
        let res = app
            .as_teacher(Method::GET, "/api/lessons", teacher)
            .send()
            .await
            .unwrap();
        others.push(started.elapsed());
        assert_eq!(res.status(), StatusCode::OK);
    }
    (resets, registrations, others)
}

#[tokio::test]
async fn a_stalled_mail_server_delays_mail_but_never_a_request() {
    const N: usize = 100;
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |_| {}).await;
    // Teachers with confirmed accounts, to ask for resets.
    let accounts: Vec<String> = (0..N).map(|n| format!("t{n}@school.org")).collect();
    for address in &accounts {
        let body = json!({"email": address, "name": "Teacher", "password": PASSWORD});
        assert_eq!(
            post("/api/auth/register", &app, body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    for address in &accounts {
        let token = link(
            &mail_to(&smtp, address, "Confirm your address for classcast").await,
            "#confirm=",
        );
        assert_eq!(
            post("/api/auth/confirm", &app, json!({"token": token}))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let teacher = app.login(&accounts[0]).await;

    // With the mail server answering: each request causes a mail, all arrive.
    let (resets, registrations, others) = requests(&app, &accounts, "calm", &teacher).await;
    let expected = 3 * N;
    eventually!(MAIL_ARRIVES, EVERY, {
        let got = smtp.received().len();
        if got == expected {
            Ok(())
        } else {
            Err(format!("{got} of {expected} mails"))
        }
    });

    // Stalled: every connection hangs before the greeting.
    smtp.stall(true);
    let (stalled_resets, stalled_registrations, stalled_others) =
        requests(&app, &accounts, "stalled", &teacher).await;
    assert_eq!(
        smtp.received().len(),
        expected,
        "nothing is delivered while the server stalls"
    );
    for (what, calm, stalled) in [
        ("reset request", resets, stalled_resets),
        ("registration", registrations, stalled_registrations),
        ("other API call", others, stalled_others),
    ] {
        let (calm, stalled_median) = (median(calm), median(stalled.clone()));
        let slowest = stalled.iter().max().unwrap();
        eprintln!("{what}: median {calm:?} calm, {stalled_median:?} stalled (slowest {slowest:?})");
        // A request that waited for the stalled server would take the SMTP timeout at
        // least: the server hangs before its greeting. How much slower the stalled requests
        // are otherwise is the machine's load, a benchmark's business, not this test's.
        assert!(
            *slowest < classcast::mail::SMTP_TIMEOUT,
            "{what}: one took {slowest:?}"
        );
    }

    // Once the stall ends, every mail arrives, each exactly once.
    smtp.stall(false);
    let expected = expected + 2 * N;
    eventually!(MAIL_ARRIVES * 2, EVERY, {
        let got = smtp.received().len();
        if got >= expected {
            Ok(())
        } else {
            Err(format!("{got} of {expected} mails"))
        }
    });
    let out = cli(app.data_dir(), &["mail", "status"], "");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("0 pending, {expected} sent, 0 dead")),
        "{said}"
    );
    assert_eq!(smtp.received().len(), expected, "no mail twice");
    for address in &accounts {
        assert_eq!(
            smtp.to(address).len(),
            3,
            "{address}: confirmation and two resets"
        );
    }
    for n in 0..N {
        for fresh in ["calm", "stalled"] {
            assert_eq!(smtp.to(&format!("{fresh}{n}@school.org")).len(), 1);
        }
    }
}

#[tokio::test]
async fn in_the_browser_a_teacher_asks_for_a_link_and_sets_a_new_password() {
    use crate::tools::{missing, Tool};
    if missing(&[Tool::Chromium]) {
        return;
    }
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |a| {
        a.registration = Some(classcast::config::Registration::Open)
    })
    .await;
    let t = app.register("forgetful@school.org").await;
    let driver = crate::webdriver::Driver::start().await;
    let page = driver.browser(1280, 900).await;
    page.goto(&format!("{}/login?next=/lessons", app.base))
        .await;
    page.wait_until(
        "the reset offered",
        "return !document.querySelector('#forgot-row').hidden",
    )
    .await;
    page.type_into("#signin-email", &t.email).await;
    page.click("#forgot-open").await;
    assert_eq!(
        page.run(
            "return document.querySelector('#forgot-email').value",
            json!([])
        )
        .await,
        json!(t.email),
        "the address typed to sign in comes along"
    );
    page.click("#forgot-form button[type=submit]").await;
    page.wait_for_text("#forgot-form .form-notice", "30 minutes")
        .await;

    let token = link(
        &mail_to(&smtp, &t.email, "Set a new classcast password").await,
        "#reset=",
    );
    // As the mailed link opens it (with the server's own address for the public one).
    page.goto(&format!("{}/login#reset={token}", app.base))
        .await;
    page.wait_for("#panel-reset:not([hidden]) #reset-password")
        .await;
    page.type_into("#reset-password", NEW_PASSWORD).await;
    page.click("#reset-form button[type=submit]").await;
    page.wait_until(
        "the lessons page, signed in",
        "return location.pathname === '/lessons' && !!document.querySelector('#lesson-list')",
    )
    .await;
    assert_eq!(me(&app, &t.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, &t.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn in_a_cluster_each_mail_is_sent_once_by_the_node_that_wrote_it() {
    use crate::tools::{missing, Tool};
    if missing(&[Tool::Postgres]) {
        return;
    }
    let smtp = SmtpServer::start().await;
    let (_a, _b, url_a, url_b) = crate::cluster::replicating_pair().await;
    let url = smtp.url();
    let node = |first: &str, second: &str| {
        let data = tempfile::tempdir().unwrap();
        let flags = [
            "--database",
            first,
            "--database",
            second,
            "--smtp-url",
            &url,
            "--public-url",
            PUBLIC_URL,
        ];
        let process = Process::start_with(data.path(), &flags);
        let app = TestApp::of_process(&process, data);
        (process, app)
    };
    let (_one, app_one) = node(&url_a, &url_b);
    let (_two, app_two) = node(&url_b, &url_a);
    let t = app_one.register("everywhere@school.org").await;
    eventually!(MAIL_ARRIVES, EVERY, {
        match me(&app_two, &t.token).await {
            StatusCode::OK => Ok(()),
            other => Err(format!(
                "the account never reached the second node: {other}"
            )),
        }
    });

    for app in [&app_one, &app_two] {
        let asked = post("/api/auth/password-reset", app, json!({"email": t.email})).await;
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
    }
    eventually!(MAIL_ARRIVES, EVERY, {
        match smtp.to(&t.email).len() {
            2 => Ok(()),
            n => Err(format!("{n} of 2 mails")),
        }
    });
    // Each mail has one attempt, on both databases, written by the node that wrote the mail.
    let urls = [url_a.as_str(), url_b.as_str()];
    let by_writer = "SELECT count(*) FROM mail_attempt a JOIN mail m ON m.id = a.mail_id
                     WHERE a.outcome = 'sent' AND a.node = m.node";
    crate::cluster::until_replicated(&urls, by_writer, 2).await;
    crate::cluster::until_replicated(&urls, "SELECT count(*) FROM mail_attempt", 2).await;
}

#[tokio::test]
async fn a_reset_request_takes_as_long_for_an_address_without_an_account() {
    const N: usize = 40;
    let smtp = SmtpServer::start().await;
    let app = mailing(&smtp, |a| {
        a.registration = Some(classcast::config::Registration::Open)
    })
    .await;
    for n in 0..N {
        app.register(&format!("known{n}@school.org")).await;
    }
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Alternating, so that both see the same machine.
    for n in 0..N {
        for (address, times) in [
            (format!("known{n}@school.org"), &mut known),
            (format!("unknown{n}@school.org"), &mut unknown),
        ] {
            let started = Instant::now();
            let res = post("/api/auth/password-reset", &app, json!({"email": address})).await;
            times.push(started.elapsed());
            assert_eq!(res.status(), StatusCode::ACCEPTED);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    eprintln!("reset request: median {known:?} with an account, {unknown:?} without");
    assert!(
        known <= unknown * 2 && unknown <= known * 2,
        "with an account {known:?}, without {unknown:?}"
    );
    eventually!(MAIL_ARRIVES, EVERY, {
        match smtp.received().len() {
            n if n == N => Ok(()),
            n => Err(format!("{n} of {N} mails")),
        }
    });
}
