//! The DNS wire protocol of the lab's servers, pure: one query message in,
//! the response message out, answered by a [`Resolver`]. Azure-provided DNS
//! (168.63.129.16) is a recursive resolver for its clients, so answers carry
//! RA and are not authoritative; NXDOMAIN and SERVFAIL come from the
//! resolver (a missing name, a CNAME loop). Odd requests are answered the way
//! hickory-server's catalog answers them: UPDATE is REFUSED, other opcodes
//! NOTIMP, an EDNS version above 0 BADVERS, an unparsable query FORMERR, and
//! responses are never answered (no reflection).

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record as WireRecord, RecordType as WireType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{QueryType, Rcode, RecordData, RecordType, Resolver};

/// How the query arrived: UDP answers are cut to the client's payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Largest UDP response to a client without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: usize = 512;
/// The UDP payload the servers offer with EDNS (the DNS flag day 2020 value).
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// The response to `query`, or `None` when nothing must be sent (not even a
/// header, or a message that is itself a response).
pub fn respond(query: &[u8], resolver: &Resolver, transport: Transport) -> Option<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => {
            let header = Header::read(&mut BinDecoder::new(query)).ok()?;
            if header.metadata.message_type == MessageType::Response {
                return None;
            }
            let mut resp = Message::error_msg(
                header.metadata.id,
                header.metadata.op_code,
                ResponseCode::FormErr,
            );
            resp.metadata.recursion_desired = header.metadata.recursion_desired;
            return resp.to_vec().ok();
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.metadata.checking_disabled = request.metadata.checking_disabled;
    resp.queries = request.queries.clone();
    let mut limit = PLAIN_UDP_PAYLOAD;
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP_PAYLOAD);
        edns.set_version(0);
        resp.edns = Some(edns);
        limit = usize::from(req_edns.max_payload().clamp(512, EDNS_UDP_PAYLOAD));
        if req_edns.version() > 0 {
            resp.metadata.response_code = ResponseCode::BADVERS;
            return resp.to_vec().ok();
        }
    }
    resp.metadata.response_code = match request.metadata.op_code {
        OpCode::Query => answer_query(&request, resolver, &mut resp),
        OpCode::Update => ResponseCode::Refused,
        _ => ResponseCode::NotImp,
    };
    let bytes = resp.to_vec().ok()?;
    if transport == Transport::Udp && bytes.len() > limit {
        // Too big for the client's datagram: TC set, it retries over TCP.
        return resp.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// Fills the answer section of a standard query; returns its rcode.
fn answer_query(request: &Message, resolver: &Resolver, resp: &mut Message) -> ResponseCode {
    let [query] = request.queries.as_slice() else {
        return ResponseCode::FormErr;
    };
    if query.query_class() != DNSClass::IN {
        return ResponseCode::Refused;
    }
    let qtype = match query.query_type() {
        WireType::A => QueryType::Known(RecordType::A),
        WireType::AAAA => QueryType::Known(RecordType::Aaaa),
        WireType::CNAME => QueryType::Known(RecordType::Cname),
        WireType::TXT => QueryType::Known(RecordType::Txt),
        // Zone transfers are for secondaries, never for a VNet's clients.
        WireType::AXFR | WireType::IXFR => return ResponseCode::Refused,
        _ => QueryType::Other,
    };
    let asked = query.name().to_ascii();
    let answer = resolver.answer(&asked, qtype);
    for r in &answer.records {
        // The first owner is the asked name: echo its spelling (0x20 case).
        let owner = if answer.records.first().is_some_and(|f| f.name == r.name) {
            query.name().clone()
        } else {
            match Name::from_ascii(format!("{}.", r.name)) {
                Ok(n) => n,
                Err(_) => return ResponseCode::ServFail,
            }
        };
        let data = match &r.data {
            RecordData::A(ip) => RData::A(A(*ip)),
            RecordData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            RecordData::Cname(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(n) => RData::CNAME(CNAME(n)),
                Err(_) => return ResponseCode::ServFail,
            },
            RecordData::Txt(t) => RData::TXT(TXT::new(t.clone())),
        };
        resp.answers
            .push(WireRecord::from_rdata(owner, r.ttl, data));
    }
    match answer.rcode {
        Rcode::NoError => ResponseCode::NoError,
        Rcode::NxDomain => ResponseCode::NXDomain,
        Rcode::ServFail => ResponseCode::ServFail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Record, PUBLIC_TTL};
    use hickory_proto::op::Query;

    fn resolver() -> Resolver {
        Resolver::from_public_records(vec![
            Record {
                name: "host1.internet.lab".into(),
                rtype: RecordType::A,
                ttl: PUBLIC_TTL,
                data: RecordData::A("198.18.100.10".parse().unwrap()),
            },
            Record {
                name: "www.internet.lab".into(),
                rtype: RecordType::Cname,
                ttl: PUBLIC_TTL,
                data: RecordData::Cname("host1.internet.lab".into()),
            },
            Record {
                name: "loop.internet.lab".into(),
                rtype: RecordType::Cname,
                ttl: PUBLIC_TTL,
                data: RecordData::Cname("loop.internet.lab".into()),
            },
        ])
    }

    fn query(name: &str, t: WireType) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn ask(m: &Message, transport: Transport) -> Message {
        let bytes = respond(&m.to_vec().unwrap(), &resolver(), transport).expect("an answer");
        Message::from_vec(&bytes).unwrap()
    }

    #[test]
    fn answers_a_cname_chain_with_ra_and_the_query_echoed() {
        let r = ask(&query("WWW.internet.lab.", WireType::A), Transport::Udp);
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert!(r.metadata.recursion_available && r.metadata.recursion_desired);
        assert!(!r.metadata.authoritative);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.queries.len(), 1);
        assert_eq!(r.answers.len(), 2, "{r}");
        assert_eq!(r.answers[0].name.to_ascii(), "WWW.internet.lab.");
        assert_eq!(
            r.answers[1].data,
            RData::A(A("198.18.100.10".parse().unwrap()))
        );
    }

    #[test]
    fn nxdomain_servfail_and_nodata() {
        let nx = ask(&query("nope.internet.lab.", WireType::A), Transport::Udp);
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        let sf = ask(&query("loop.internet.lab.", WireType::A), Transport::Udp);
        assert_eq!(sf.metadata.response_code, ResponseCode::ServFail);
        let nodata = ask(&query("host1.internet.lab.", WireType::MX), Transport::Udp);
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        let aaaa = ask(
            &query("host1.internet.lab.", WireType::AAAA),
            Transport::Tcp,
        );
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
    }

    #[test]
    fn odd_requests_as_hickory_answers_them() {
        let mut update = query("host1.internet.lab.", WireType::A);
        update.metadata.op_code = OpCode::Update;
        assert_eq!(
            ask(&update, Transport::Udp).metadata.response_code,
            ResponseCode::Refused
        );
        let mut status = query("host1.internet.lab.", WireType::A);
        status.metadata.op_code = OpCode::Status;
        assert_eq!(
            ask(&status, Transport::Udp).metadata.response_code,
            ResponseCode::NotImp
        );
        let axfr = ask(&query("internet.lab.", WireType::AXFR), Transport::Tcp);
        assert_eq!(axfr.metadata.response_code, ResponseCode::Refused);
        let mut two = query("host1.internet.lab.", WireType::A);
        two.add_query(Query::query(
            Name::from_ascii("www.internet.lab.").unwrap(),
            WireType::A,
        ));
        assert_eq!(
            ask(&two, Transport::Udp).metadata.response_code,
            ResponseCode::FormErr
        );
        let mut edns1 = query("host1.internet.lab.", WireType::A);
        let mut e = Edns::new();
        e.set_version(1);
        edns1.edns = Some(e);
        // BADVERS and BADSIG share the value 16 (the decoder names it BADSIG).
        assert_eq!(
            u16::from(ask(&edns1, Transport::Udp).metadata.response_code),
            u16::from(ResponseCode::BADVERS)
        );
        // A response is never answered; garbage after a header is FORMERR.
        let mut response = query("host1.internet.lab.", WireType::A);
        response.metadata.message_type = MessageType::Response;
        assert!(respond(&response.to_vec().unwrap(), &resolver(), Transport::Udp).is_none());
        assert!(respond(&[0u8; 5], &resolver(), Transport::Udp).is_none());
        let mut bad = query("host1.internet.lab.", WireType::A).to_vec().unwrap();
        bad.truncate(14);
        let r = Message::from_vec(&respond(&bad, &resolver(), Transport::Udp).unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(r.metadata.id, 0x1234);
    }

    #[test]
    fn big_udp_answers_are_truncated_but_not_over_tcp() {
        let records: Vec<Record> = (0..60)
            .map(|i| Record {
                name: "many.internet.lab".into(),
                rtype: RecordType::A,
                ttl: 60,
                data: RecordData::A(std::net::Ipv4Addr::new(198, 18, 1, i)),
            })
            .collect();
        let r = Resolver::from_public_records(records);
        let q = query("many.internet.lab.", WireType::A).to_vec().unwrap();
        let udp = Message::from_vec(&respond(&q, &r, Transport::Udp).unwrap()).unwrap();
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        let tcp = Message::from_vec(&respond(&q, &r, Transport::Tcp).unwrap()).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 60);
        // With EDNS the client's larger payload is used.
        let mut e = query("many.internet.lab.", WireType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        e.edns = Some(edns);
        let big =
            Message::from_vec(&respond(&e.to_vec().unwrap(), &r, Transport::Udp).unwrap()).unwrap();
        assert!(!big.metadata.truncation);
        assert_eq!(big.answers.len(), 60);
        assert_eq!(big.edns.unwrap().max_payload(), EDNS_UDP_PAYLOAD);
    }
}
