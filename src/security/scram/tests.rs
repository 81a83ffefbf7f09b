use super::*;

/// The client side, written from RFC 5802: the final message for `password`.
fn client_final(
    m: Mechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let attrs = attributes(server_first);
    let salt = B64.decode(&attrs["s"]).expect("salt");
    let iterations: u32 = attrs["i"].parse().expect("iterations");
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = m.hmac(&salted, b"Client Key");
    let stored_key = m.hash(&client_key);
    let without_proof = format!("c=biws,r={}", attrs["r"]);
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = m.hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", B64.encode(proof))
}

fn exchange(m: Mechanism, stored: &Credential, password: &str) -> Step {
    let lookup =
        |user: &str, mech: Mechanism| (user == "alice" && mech == m).then(|| stored.clone());
    let mut server = Exchange::Start(m);
    let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
    let Step::Continue(first) = server.step(format!("n,,{bare}").as_bytes(), lookup) else {
        panic!("the server challenges");
    };
    let first = String::from_utf8(first).expect("utf-8");
    assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"), "{first}");
    let fin = client_final(m, password, bare, &first);
    server.step(fin.as_bytes(), lookup)
}

#[test]
fn both_mechanisms_authenticate_the_right_password_only() {
    for m in [Mechanism::Sha256, Mechanism::Sha512] {
        let stored = Credential::new(m, "alice-secret", MIN_ITERATIONS);
        match exchange(m, &stored, "alice-secret") {
            Step::Done(user, reply) => {
                assert_eq!(user, "alice");
                assert!(reply.starts_with(b"v="));
            }
            other => panic!("{m:?}: {other:?}"),
        }
        assert!(matches!(exchange(m, &stored, "wrong"), Step::Failed(_)));
        assert!(stored.matches(m, "alice-secret") && !stored.matches(m, "alice"));
    }
}

#[test]
fn rfc_7677_test_vector_gives_the_same_keys() {
    // RFC 7677's example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
    let salted = Mechanism::Sha256.salted_password(b"pencil", &salt, 4096);
    let credential = Credential::from_salted(Mechanism::Sha256, &salted, salt, 4096);
    let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let server_signature = Mechanism::Sha256.hmac(&credential.server_key, auth.as_bytes());
    assert_eq!(
        B64.encode(server_signature),
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

#[test]
fn garbage_is_refused_without_a_panic() {
    let lookup = |_: &str, _: Mechanism| None;
    for message in [
        &b""[..],
        b"n,,",
        b"p=x,,n=a,r=b",
        b"\xff\xfe",
        b"n,,n=alice",
    ] {
        let mut server = Exchange::Start(Mechanism::Sha256);
        assert!(
            matches!(server.step(message, lookup), Step::Failed(_)),
            "{message:?}"
        );
    }
}
