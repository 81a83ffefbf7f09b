//! A connection's answers on their way from its reader to its writer, in
//! order, at most `depth` at a time.
//!
//! Both halves run in the connection's one task, through [`both`], which
//! always polls the reader first and the writer after it. So an answer the
//! reader queues while the writer waits is seen by the writer in the same
//! turn, and needs no wakeup. tokio's mpsc woke the task for it anyway, which
//! then polled the whole connection once more for nothing: a third poll for
//! each idle long-poll's two, about a twentieth of its instructions. Wakeups
//! that cross turns (a full queue freed, a half gone) are still sent.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The queue between one reader and one writer.
#[derive(Debug)]
pub(super) struct Queue<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    depth: usize,
    reader_gone: bool,
    writer_gone: bool,
    /// The reader, waiting for room.
    reader: Option<Waker>,
    /// The writer, waiting for an item.
    writer: Option<Waker>,
}

impl<T> Queue<T> {
    pub(super) fn new(depth: usize) -> Queue<T> {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                depth: depth.max(1),
                reader_gone: false,
                writer_gone: false,
                reader: None,
                writer: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader's end; when it is dropped, the writer's [`Writer::recv`]
    /// answers `None` once the queue is empty.
    pub(super) fn reader(&self) -> Reader<'_, T> {
        Reader(self)
    }

    /// The writer's end; when it is dropped, [`Reader::send`] fails.
    pub(super) fn writer(&self) -> Writer<'_, T> {
        Writer(self)
    }
}

/// Registers `cx`'s waker in `slot`, cloning it only when it is another.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[derive(Debug)]
pub(super) struct Reader<'a, T>(&'a Queue<T>);

impl<T> Reader<'_, T> {
    /// Queues `item` once there is room; gives it back if the writer is gone.
    pub(super) async fn send(&self, item: T) -> Result<(), T> {
        let mut item = Some(item);
        poll_fn(|cx| {
            let mut state = self.0.lock();
            if state.writer_gone {
                return Poll::Ready(Err(item.take().expect("sent once")));
            }
            if state.items.len() >= state.depth {
                register(&mut state.reader, cx);
                return Poll::Pending;
            }
            state.items.push_back(item.take().expect("sent once"));
            // A writer waiting in this same task is polled after the reader
            // in this turn (see `both`): waking it would poll the task again.
            if let Some(writer) = state.writer.take()
                && !writer.will_wake(cx.waker())
            {
                writer.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl<T> Drop for Reader<'_, T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.reader_gone = true;
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }
}

#[derive(Debug)]
pub(super) struct Writer<'a, T>(&'a Queue<T>);

impl<T> Writer<'_, T> {
    /// The next item, or `None` once the reader is gone and the queue empty.
    pub(super) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| {
            let mut state = self.0.lock();
            if let Some(item) = state.items.pop_front() {
                // The reader was polled before the writer: only a wakeup
                // brings it back to use the room.
                if let Some(reader) = state.reader.take() {
                    reader.wake();
                }
                return Poll::Ready(Some(item));
            }
            if state.reader_gone {
                return Poll::Ready(None);
            }
            register(&mut state.writer, cx);
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Writer<'_, T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.writer_gone = true;
        // What was queued will never be written: free it now (a request's
        // frame holds its share of the broker's in-flight budget), not when
        // the reader next wakes, which may be long after.
        let unwritten = std::mem::take(&mut state.items);
        let reader = state.reader.take();
        drop(state);
        drop(unwritten);
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// Runs `reader` and `writer` to their ends in the calling task, polling the
/// reader first in every turn, as [`Reader::send`] relies on.
///
/// Both come pinned where the caller made them: taken by value, each would
/// sit in this future twice (as an argument and pinned).
pub(super) async fn both(
    mut reader: Pin<&mut impl Future<Output = ()>>,
    mut writer: Pin<&mut impl Future<Output = ()>>,
) {
    let (mut read, mut written) = (false, false);
    poll_fn(|cx| {
        if !read {
            read = reader.as_mut().poll(cx).is_ready();
        }
        if !written {
            written = writer.as_mut().poll(cx).is_ready();
        }
        if read && written {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_writer_ends_after_the_reader() {
        let queue = Queue::new(2);
        let got = Mutex::new(Vec::new());
        let reader = async {
            let tx = queue.reader();
            for i in 0..100 {
                tx.send(i).await.unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        };
        let writer = async {
            let rx = queue.writer();
            while let Some(i) = rx.recv().await {
                got.lock().unwrap().push(i);
                if i % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let (reader, writer) = (pin!(reader), pin!(writer));
        tokio::time::timeout(Duration::from_secs(10), both(reader, writer))
            .await
            .expect("both ends finish");
        assert_eq!(*got.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn what_is_queued_is_freed_when_the_writer_goes() {
        let queue = Queue::new(4);
        let tx = queue.reader();
        let item = Arc::new(());
        let mut send = pin!(async {
            tx.send(item.clone()).await.unwrap();
        });
        let mut send: Task<'_> = send.as_mut();
        let waker = Arc::new(Count(AtomicUsize::new(0)));
        assert!(poll(&mut send, &waker).is_ready());
        assert_eq!(Arc::strong_count(&item), 2, "queued");
        drop(queue.writer());
        assert_eq!(Arc::strong_count(&item), 1, "freed with the writer");
    }

    #[tokio::test]
    async fn a_send_fails_once_the_writer_is_gone() {
        let queue = Queue::new(1);
        let tx = queue.reader();
        drop(queue.writer());
        assert_eq!(tx.send(5).await, Err(5));
    }

    /// Counts wakeups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    type Task<'a> = std::pin::Pin<&'a mut dyn Future<Output = ()>>;

    fn poll(fut: &mut Task<'_>, waker: &Arc<Count>) -> Poll<()> {
        let waker = Waker::from(waker.clone());
        fut.as_mut().poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_full_queue_waits_for_the_writer_and_is_woken_by_it() {
        let queue = Queue::new(1);
        let (tx, rx) = (queue.reader(), queue.writer());
        let reader = Arc::new(Count(AtomicUsize::new(0)));
        let writer = Arc::new(Count(AtomicUsize::new(0)));
        let mut sends = pin!(async move {
            tx.send(1).await.unwrap();
            tx.send(2).await.unwrap();
            drop(tx);
        });
        let mut sends: Task<'_> = sends.as_mut();
        assert!(
            poll(&mut sends, &reader).is_pending(),
            "the queue holds one"
        );
        let mut recvs = pin!(async {
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(rx.recv().await, Some(2));
            assert_eq!(rx.recv().await, None);
        });
        let mut recvs: Task<'_> = recvs.as_mut();
        assert!(poll(&mut recvs, &writer).is_pending());
        assert_eq!(reader.0.load(Ordering::SeqCst), 1, "room wakes the reader");
        assert!(poll(&mut sends, &reader).is_ready(), "and the reader ends");
        assert!(poll(&mut recvs, &writer).is_ready());
    }

    #[test]
    fn a_send_wakes_a_writer_of_another_task_but_not_its_own() {
        let queue = Queue::new(4);
        let (tx, rx) = (queue.reader(), queue.writer());
        let mine = Arc::new(Count(AtomicUsize::new(0)));
        let other = Arc::new(Count(AtomicUsize::new(0)));
        // The writer waits with another task's waker, then with the sender's
        // own: the first send wakes it once, the second wakes nothing.
        for (item, writer, wakes) in [(1, &other, 1), (2, &mine, 0)] {
            let mut recv = pin!(async {
                assert_eq!(rx.recv().await, Some(item));
            });
            let mut recv: Task<'_> = recv.as_mut();
            assert!(poll(&mut recv, writer).is_pending());
            let mut send = pin!(async {
                tx.send(item).await.unwrap();
            });
            let mut send: Task<'_> = send.as_mut();
            assert!(poll(&mut send, &mine).is_ready());
            assert_eq!(writer.0.load(Ordering::SeqCst), wakes, "item {item}");
            assert!(poll(&mut recv, writer).is_ready());
        }
    }
}
