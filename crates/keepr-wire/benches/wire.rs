//! The hot path of every operation: cutting frames out of the read buffer, decoding the
//! request, encoding the reply into the write buffer.
//!
//! Run with `cargo bench -p keepr-wire --bench wire`; results are per frame.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use keepr_wire::codes::{event_type, op};
use keepr_wire::frame::FrameDecoder;
use keepr_wire::*;

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0010,
        mzxid: 0x1_0000_0020,
        ctime: 1_764_000_000_000,
        mtime: 1_764_000_000_500,
        version: 3,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0010,
    }
}

fn payload(req: &Request) -> Bytes {
    let mut w = BytesMut::new();
    req.write(&mut w);
    w.freeze()
}

fn get_data_request() -> Request {
    Request::new(
        42,
        RequestBody::GetData(GetDataRequest {
            path: "/app/config/service-a".into(),
            watch: true,
        }),
    )
}

fn create_request() -> Request {
    Request::new(
        43,
        RequestBody::Create(CreateRequest {
            path: "/app/locks/lock-".into(),
            data: Some(Bytes::from(vec![7u8; 100])),
            acl: vec![Acl {
                perms: codes::perms::ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: codes::create_flags::EPHEMERAL_SEQUENTIAL,
        }),
    )
}

fn bench_requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_decode");
    g.throughput(Throughput::Elements(1));
    for (name, req) in [
        ("getData", get_data_request()),
        ("create_100B", create_request()),
        (
            "setData_100B",
            Request::new(
                44,
                RequestBody::SetData(SetDataRequest {
                    path: "/app/config/service-a".into(),
                    data: Some(Bytes::from(vec![1u8; 100])),
                    version: -1,
                }),
            ),
        ),
        ("ping", Request::new(-2, RequestBody::Ping)),
        (
            "multi_3_ops",
            Request::new(
                45,
                RequestBody::Multi(MultiRequest {
                    ops: vec![
                        MultiOp::Check(CheckVersionRequest {
                            path: "/app/leader".into(),
                            version: 3,
                        }),
                        MultiOp::SetData(SetDataRequest {
                            path: "/app/state".into(),
                            data: Some(Bytes::from_static(b"running")),
                            version: -1,
                        }),
                        MultiOp::Delete(DeleteRequest {
                            path: "/app/tmp".into(),
                            version: -1,
                        }),
                    ],
                }),
            ),
        ),
    ] {
        let frame = payload(&req);
        g.bench_function(name, |b| {
            b.iter(|| Request::decode(black_box(frame.clone())).map(|r| r.header.xid))
        });
    }
    g.finish();
}

fn bench_responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response_encode");
    g.throughput(Throughput::Elements(1));
    let data = Bytes::from(vec![9u8; 100]);
    for (name, resp) in [
        (
            "getData_100B",
            Response::ok(
                42,
                0x1_0000_0020,
                ResponseBody::GetData(GetDataResponse {
                    data: Some(data.clone()),
                    stat: stat(),
                }),
            ),
        ),
        (
            "exists",
            Response::ok(
                42,
                0x1_0000_0020,
                ResponseBody::Stat(StatResponse { stat: stat() }),
            ),
        ),
        (
            "create",
            Response::ok(
                43,
                0x1_0000_0021,
                ResponseBody::Create(CreateResponse {
                    path: "/app/locks/lock-0000000042".into(),
                }),
            ),
        ),
        (
            "error",
            Response::error(44, 0x1_0000_0021, ErrorCode::NoNode),
        ),
        (
            "notification",
            Response::notification(
                0x1_0000_0022,
                event_type::NODE_DATA_CHANGED,
                "/app/config/service-a".into(),
            ),
        ),
    ] {
        let mut out = BytesMut::with_capacity(64 * 1024);
        g.bench_function(name, |b| {
            b.iter(|| {
                if out.len() > 60 * 1024 {
                    out.clear();
                }
                black_box(&resp).write_frame(&mut out);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("response_decode");
    g.throughput(Throughput::Elements(1));
    let mut w = BytesMut::new();
    Response::ok(
        42,
        1,
        ResponseBody::GetData(GetDataResponse {
            data: Some(data),
            stat: stat(),
        }),
    )
    .write(&mut w);
    let frame = w.freeze();
    g.bench_function("getData_100B", |b| {
        b.iter(|| Response::decode(black_box(frame.clone()), op::GET_DATA).map(|r| r.header.xid))
    });
    g.finish();
}

fn bench_framing(c: &mut Criterion) {
    // A read buffer holding 1000 pipelined getData frames, cut and decoded one by one.
    const FRAMES: usize = 1000;
    let req = get_data_request();
    let mut stream = BytesMut::new();
    for _ in 0..FRAMES {
        req.write_frame(&mut stream);
    }
    let stream = stream.freeze();
    let decoder = FrameDecoder::default();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("frame_and_decode_getData", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0;
            while let Ok(Some(f)) = decoder.decode(&mut buf) {
                if Request::decode(f).is_ok() {
                    n += 1;
                }
            }
            assert_eq!(n, FRAMES);
        })
    });
    g.bench_function("frame_only", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0;
            while let Ok(Some(_)) = decoder.decode(&mut buf) {
                n += 1;
            }
            assert_eq!(n, FRAMES);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_requests, bench_responses, bench_framing);
criterion_main!(benches);
