//! The moto helper starts a real, isolated server and resets it.

use std::io::{Read, Write};
use std::net::TcpStream;
use test_support::{DevEnv, MotoServer, Part};

/// Sends a raw AWS query-protocol request and returns the response text.
fn post_query(port: u16, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn servers_are_isolated_and_reset_wipes_state() {
    let env = DevEnv::load();
    if env
        .require(Part::Python, "servers_are_isolated_and_reset_wipes_state")
        .is_none()
    {
        return;
    }
    let a = MotoServer::start(&env).expect("first server");
    let b = MotoServer::start(&env).expect("second server");
    assert_ne!(a.port(), b.port());
    assert!(a.endpoint().starts_with("http://127.0.0.1:"));

    let create = "Action=CreateQueue&QueueName=isolation-check&Version=2012-11-05";
    let list = "Action=ListQueues&Version=2012-11-05";
    assert!(post_query(a.port(), create).contains("isolation-check"));
    assert!(
        post_query(a.port(), list).contains("isolation-check"),
        "queue exists on a"
    );
    assert!(
        !post_query(b.port(), list).contains("isolation-check"),
        "b does not see a's queue"
    );

    a.reset().expect("reset");
    assert!(
        !post_query(a.port(), list).contains("isolation-check"),
        "reset wipes the queue"
    );

    let port = a.port();
    drop(a);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "dropping stops the server"
    );
}
