//! A panic on the server's loop thread: it is reported to the embedder as `Event::Panicked` (which
//! the TypeScript shell turns into ScacheServer 'error', and the daemon into `panic:` and exit 1),
//! `stop` reports it, and everything the loop held is closed while the panic unwinds: clients, cached
//! connections, the listening socket and its file.
//!
//! No input makes the loop panic (tests/fuzz.rs tries millions), and production code has no hook
//! for it; the panic is raised by the embedder's own event sink, which runs on the loop thread.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scache_core::client::Client;
use scache_core::protocol::Status;
use scache_core::server::{Event, Listener, Plan, Server, Setup};

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_panic_on_the_loop_thread_is_reported_and_every_descriptor_closed() {
    let dir = std::env::temp_dir().join(format!("scache-faults-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scache");
    let listener = Listener::bind(&path, 0o600).unwrap();
    let setup = Setup { plan: Plan::new().with_postfix_routes(), listeners: vec![listener], master: None, stdio: None };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        move |batch: Vec<Event>| {
            let warned = batch.iter().any(|event| matches!(event, Event::Warning(_)));
            seen.lock().unwrap().extend(batch);
            if warned {
                panic!("injected panic in the event sink");
            }
        }
    };
    let mut server = Server::start(setup, sink).unwrap();

    // A cached connection, and a client connected when the panic comes.
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    let (cached, mut peer) = UnixStream::pair().unwrap();
    assert_eq!(client.save_endp(60, b"E", b"p", cached.as_fd()).unwrap(), Status::Ok);
    drop(cached);
    let mut bystander = UnixStream::connect(&path).unwrap();
    bystander.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut greeting = [0u8; 36];
    bystander.read_exact(&mut greeting).unwrap();

    // An unknown request makes the server warn: the sink panics on that batch.
    let mut raw = UnixStream::connect(&path).unwrap();
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    raw.read_exact(&mut greeting).unwrap();
    raw.write_all(b"request\0foo\0\0").unwrap();

    let deadline = Instant::now() + TIMEOUT;
    let panicked = loop {
        let message = seen.lock().unwrap().iter().find_map(|event| match event {
            Event::Panicked(message) => Some(message.clone()),
            _ => None,
        });
        if let Some(message) = message {
            break message;
        }
        assert!(Instant::now() < deadline, "no Panicked event");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(panicked, "injected panic in the event sink");
    let stopped = server.stop();
    assert!(stopped.is_err_and(|error| error.to_string() == "injected panic in the event sink"));

    // Everything the loop held was closed while the panic unwound.
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(peer.read(&mut byte).unwrap(), 0, "the cached connection was closed");
    assert_eq!(bystander.read(&mut byte).unwrap(), 0, "clients were disconnected");
    assert!(!path.exists(), "the socket file was removed");
    let _ = writeln!(
        std::io::stderr(),
        "faults: a panic on the loop thread was reported as Event::Panicked, stop() returned it, and the cached connection, the clients and the socket file were closed"
    );
}
