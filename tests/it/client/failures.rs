//! Error classes, what is retried, and how long the waits are.

use super::*;

#[tokio::test]
async fn a_412_with_code_9_is_a_recipient_restriction_and_is_not_retried() {
    let server = MockServer::start().await;
    answer(
        &server,
        &v2_path(),
        412,
        json_fixture("send_message_v2_error_412.json"),
        1,
    )
    .await;
    let error = send_text(&client(&server)).await.unwrap_err();
    let DivarError::RecipientRestricted { message } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        message,
        "message delivery failed due to recipient's restriction"
    );
    assert_eq!(error.exit_code(), 3);
}

#[tokio::test]
async fn a_401_403_or_400_is_classified_and_is_not_retried() {
    let rpc = json_fixture("error_google_rpc_status.json");
    for status in [401, 403, 400] {
        let server = MockServer::start().await;
        answer(&server, &v2_path(), status, rpc.clone(), 1).await;
        let error = send_text(&client(&server)).await.unwrap_err();
        match (status, &error) {
            (401, DivarError::Unauthorized { code: Some(7), .. })
            | (403, DivarError::Forbidden { code: Some(7), .. }) => {}
            (
                400,
                DivarError::Rejected {
                    status: 400,
                    code: Some(7),
                    message,
                },
            ) => {
                assert_eq!(message, "permission denied");
            }
            _ => panic!("{status}: {error:?}"),
        }
        assert_eq!(error.exit_code(), 3);
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn a_lasting_408_is_retried_up_to_the_attempt_limit_within_the_backoff_bound() {
    let server = MockServer::start().await;
    answer(
        &server,
        &v2_path(),
        408,
        json!({"code": 4, "message": "request timeout"}),
        4,
    )
    .await;
    let started = Instant::now();
    let error = send_text(&client(&server)).await.unwrap_err();
    // Waits of at most 10 + 20 + 40 ms, plus four local round trips: far below the 200 ms
    // base of the default backoff.
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            DivarError::Transient {
                status: Some(408),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 4);
}

#[tokio::test]
async fn a_lasting_503_with_retry_after_ends_transient_after_every_attempt() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .expect(4)
        .mount(&server)
        .await;
    let error = send_text(&client(&server)).await.unwrap_err();
    assert!(
        matches!(
            error,
            DivarError::Transient {
                status: Some(503),
                retry_after: Some(d),
                ..
            } if d.is_zero()
        ),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 4);
}

#[tokio::test]
async fn a_429_is_retried_until_the_call_succeeds() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    answer(
        &server,
        &v2_path(),
        200,
        json!({"status": 200, "message": "success"}),
        1,
    )
    .await;
    assert_eq!(send_text(&client(&server)).await.unwrap().status, Some(200));
}

#[tokio::test]
async fn a_lasting_429_ends_rate_limited_after_every_attempt() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .expect(4)
        .mount(&server)
        .await;
    let error = send_text(&client(&server)).await.unwrap_err();
    assert!(matches!(error, DivarError::RateLimited { retry_after: Some(d), .. } if d.is_zero()));
    assert_eq!(error.exit_code(), 4);
}

/// Times a call answered 429 with `retry_after`, then 200 (when `calls` is 2).
async fn time_a_429_then_200(
    retry_after: &str,
    max_delay_ms: u64,
    deadline_ms: u64,
    calls: u64,
) -> (Duration, Result<SendMessageResponse, DivarError>) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", retry_after))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    answer(&server, &v2_path(), 200, json!({}), calls - 1).await;
    let client = DivarClient::new(DivarClientSettings {
        retry_max_delay_ms: max_delay_ms,
        retry_deadline_ms: deadline_ms,
        ..settings(&server)
    })
    .unwrap();
    let started = Instant::now();
    let result = send_text(&client).await;
    (started.elapsed(), result)
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (elapsed, result) = time_a_429_then_200("1", 5_000, 5_000, 2).await;
    result.unwrap();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(4_500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn retry_after_is_clamped_to_the_longest_wait() {
    let (elapsed, result) = time_a_429_then_200("30", 150, 5_000, 2).await;
    result.unwrap();
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn no_wait_runs_past_the_deadline() {
    let (elapsed, result) = time_a_429_then_200("1", 5_000, 300, 1).await;
    assert!(
        matches!(result, Err(DivarError::RateLimited { .. })),
        "{result:?}"
    );
    // Waiting the 1 s Retry-After would take 1 s or more.
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
}
