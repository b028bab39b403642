//! A small pool of helper threads for blocking work (DNS resolution). Jobs
//! return a [`Completion`] that is queued for the driver thread; the reactor's
//! waker makes the driver's fd readable so it calls `unisock_dispatch`.

use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread;

use mio::Waker;
use parking_lot::Mutex;

use super::Completion;

type Job = Box<dyn FnOnce() -> Completion + Send>;

pub struct Pool {
    tx: Sender<Job>,
}

impl Pool {
    pub fn new(threads: usize, done: Arc<Mutex<Vec<Completion>>>, waker: Arc<Waker>) -> Pool {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let done = Arc::clone(&done);
            let waker = Arc::clone(&waker);
            let spawned = thread::Builder::new()
                .name(format!("unisock-helper-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().recv() {
                        Ok(job) => job,
                        Err(_) => return, // pool dropped
                    };
                    super::hand_back(&done, &waker, job());
                });
            if let Err(e) = spawned {
                super::log::warn(&format!("unisock: helper thread could not start: {e}"));
            }
        }
        Pool { tx }
    }

    pub fn submit(&self, job: Job) {
        if self.tx.send(job).is_err() {
            super::log::warn("unisock: helper pool is gone; job dropped");
        }
    }
}
