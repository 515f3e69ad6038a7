//! Waiting, with a deadline, for what happens in its own time (replication, another process,
//! a timer on the server): a test never sleeps a fixed time instead.

/// Evaluates `$check` (an expression, `.await` allowed, borrowing what it likes) every
/// `$every` until it gives `Ok(value)`, and gives that value; once `$within` has passed, the
/// test fails with the `Err` it gave last, which says what never happened.
macro_rules! eventually {
    ($within:expr, $every:expr, $check:expr $(,)?) => {{
        let deadline = tokio::time::Instant::now() + $within;
        loop {
            let outcome: Result<_, String> = $check;
            match outcome {
                Ok(value) => break value,
                Err(said) => {
                    assert!(tokio::time::Instant::now() < deadline, "{said}");
                    tokio::time::sleep($every).await;
                }
            }
        }
    }};
}

pub(crate) use eventually;
