//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! chromedriver: just what the end-to-end tests need (open, find, click, type, read, run a
//! script, screenshot). `scripts/test` installs `chromium` and `chromium-driver`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// How long a page may take to show what a test waits for.
pub const PAGE_PATIENCE: Duration = Duration::from_secs(20);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    process: Child,
    base: String,
    client: reqwest::Client,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, so that dropping the driver also ends every browser it
        // started (they inherit the group), even when a test fails half-way.
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver runs: install chromium and chromium-driver (scripts/test does)");
        let driver = Driver {
            process,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + PAGE_PATIENCE;
        loop {
            if let Ok(res) = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                if res.status().is_success() {
                    return driver;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A fresh headless browser with its own profile (its own localStorage).
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        self.browser_with(width, height, &[]).await
    }

    /// [`Driver::browser`] with more Chromium `switches`.
    pub async fn browser_with(&self, width: u32, height: u32, switches: &[&str]) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(switches.iter().map(|s| s.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args
            }
        }}});
        let res: Value = self
            .client
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {res}"))
            .to_owned();
        Browser {
            url: format!("{}/session/{id}", self.base),
            client: self.client.clone(),
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.wait();
    }
}

pub struct Browser {
    url: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn refresh(&self) {
        self.call(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    /// The first element matching a CSS selector, if there is one now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        if std::env::var_os("TEST_LOG").is_some() && v.get(ELEMENT).is_none() {
            eprintln!("find {css}: {v}");
        }
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits (up to [`PAGE_PATIENCE`]) for `script` to return something truthy and returns it.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PAGE_PATIENCE;
        loop {
            let v = self.run(script, json!([])).await;
            let truthy = !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0));
            if truthy {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element matching `css` whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let script = format!(
            "return [...document.querySelectorAll({css:?})].map(e => e.innerText).find(t => t.includes({text:?})) || null"
        );
        self.wait_until(&format!("{css} showing {text:?}"), &script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn wait_for(&self, css: &str) -> String {
        let script = format!("return document.querySelector({css:?}) ? true : null");
        self.wait_until(css, &script).await;
        match self.find(css).await {
            Some(el) => el,
            None => panic!("{css} is on the page but WebDriver cannot find it"),
        }
    }

    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Scrolls `css` to the middle of the window and clicks it, where a person would look for
    /// it: clicked where it is, it may lie half under a sticky bar, which takes the click.
    pub async fn click_centred(&self, css: &str) {
        self.wait_for(css).await;
        self.run(
            "document.querySelector(arguments[0]).scrollIntoView({ block: 'center' })",
            json!([css]),
        )
        .await;
        self.click(css).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Presses each of `keys` (WebDriver's key codes, such as `"\u{E004}"` for Tab) wherever
    /// the focus is, as a person at the keyboard would.
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                let k = k.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        let sequence = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.call(reqwest::Method::POST, "/actions", Some(sequence))
            .await;
    }

    /// Chooses the file at `path` in the file input `css`, as a person picking it would.
    pub async fn attach(&self, css: &str, path: &std::path::Path) {
        let el = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": path.display().to_string()})),
        )
        .await;
    }

    /// Slows this browser's network to a school line's (Chromium's network emulation):
    /// `latency_ms` each way and `kbit_per_s` each direction. The emulation slows the page's
    /// own requests only, not those a service worker makes for it, so the page's requests
    /// bypass its service worker from here on (the browser's HTTP cache still serves them).
    pub async fn throttle(&self, latency_ms: u32, kbit_per_s: u32) {
        let cdp = |cmd: &str, params: Value| Some(json!({"cmd": cmd, "params": params}));
        let path = "/goog/cdp/execute";
        for (cmd, params) in [
            ("Network.enable", json!({})),
            ("Network.setBypassServiceWorker", json!({"bypass": true})),
        ] {
            self.call(reqwest::Method::POST, path, cdp(cmd, params))
                .await;
        }
        let bytes_per_s = f64::from(kbit_per_s) * 1000.0 / 8.0;
        let conditions = json!({"offline": false, "latency": latency_ms,
            "downloadThroughput": bytes_per_s, "uploadThroughput": bytes_per_s});
        self.call(
            reqwest::Method::POST,
            path,
            cdp("Network.emulateNetworkConditions", conditions),
        )
        .await;
    }

    /// Makes the page's viewport `width`×`height` (a phone turned on its side, say): the
    /// window is that plus what the browser's frame takes.
    pub async fn resize(&self, width: u32, height: u32) {
        let frame = self
            .run(
                "return [outerWidth - innerWidth, outerHeight - innerHeight]",
                json!([]),
            )
            .await;
        let extra = |i: usize| frame[i].as_u64().unwrap_or_default() as u32;
        let rect = json!({"width": width + extra(0), "height": height + extra(1)});
        self.call(reqwest::Method::POST, "/window/rect", Some(rect))
            .await;
    }

    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// What the window shows now, as PNG bytes.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let b64 = v.as_str().expect("a screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 PNG")
    }

    /// The address the page is at now.
    pub async fn url(&self) -> String {
        let v = self.call(reqwest::Method::GET, "/url", None).await;
        v.as_str().expect("a URL").to_owned()
    }

    /// Saves a PNG of the page under `test-artifacts/` (not committed).
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(png) = v
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
}
