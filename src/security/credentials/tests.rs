//! The checks AlterUserScramCredentials' changes pass, as Kafka makes them.

use super::*;

const UNACCEPTABLE: i16 = ResponseError::UnacceptableCredential.code();

fn upsert(mechanism: i8, iterations: i32) -> Alteration {
    Alteration::Upsert {
        user: "u".into(),
        mechanism,
        iterations,
        salt: b"salt".to_vec(),
        salted_password: b"salted".to_vec(),
    }
}

fn delete(mechanism: i8) -> Alteration {
    Alteration::Delete {
        user: "u".into(),
        mechanism,
    }
}

/// The code `changes` to user `user` get, and the runtime users after.
fn outcome(
    runtime: &mut BTreeMap<String, UserCredentials>,
    configured: &BTreeMap<String, UserCredentials>,
    user: &str,
    changes: &[Alteration],
) -> (i16, Vec<String>) {
    let changes: Vec<&Alteration> = changes.iter().collect();
    let code = apply(runtime, configured, user, &changes).map_or_else(|(e, _)| e.code(), |()| 0);
    (code, runtime.keys().cloned().collect())
}

#[test]
fn a_users_changes_apply_whole_or_are_refused_with_kafkas_code() {
    let mut runtime = BTreeMap::new();
    let none = BTreeMap::new();
    let users = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        outcome(&mut runtime, &none, "", &[upsert(1, 4096)]).0,
        UNACCEPTABLE
    );
    assert_eq!(
        outcome(&mut runtime, &none, "u", &[upsert(9, 4096)]).0,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    let twice = [upsert(1, 4096), delete(1)];
    assert_eq!(
        outcome(&mut runtime, &none, "u", &twice),
        (ResponseError::DuplicateResource.code(), users(&[]))
    );
    assert_eq!(
        outcome(&mut runtime, &none, "u", &[upsert(1, 100)]).0,
        UNACCEPTABLE
    );
    let unsalted = Alteration::Upsert {
        user: "u".into(),
        mechanism: 1,
        iterations: 4096,
        salt: Vec::new(),
        salted_password: b"salted".to_vec(),
    };
    assert_eq!(
        outcome(&mut runtime, &none, "u", &[unsalted]).0,
        UNACCEPTABLE
    );
    assert_eq!(
        outcome(&mut runtime, &none, "u", &[delete(2)]),
        (ResponseError::ResourceNotFound.code(), users(&[]))
    );

    // The second change is refused: the first, though valid, is not applied.
    let half = [upsert(1, 4096), upsert(2, 1)];
    assert_eq!(
        outcome(&mut runtime, &none, "u", &half),
        (UNACCEPTABLE, users(&[]))
    );
    let both = [upsert(1, 4096), upsert(2, 8192)];
    assert_eq!(outcome(&mut runtime, &none, "u", &both), (0, users(&["u"])));
    assert_eq!(runtime["u"].len(), 2);
    let gone = [delete(1), delete(2)];
    assert_eq!(outcome(&mut runtime, &none, "u", &gone), (0, users(&[])));

    let configured = BTreeMap::from([("u".to_string(), in_the_file(Mechanism::Sha256))]);
    for change in [upsert(2, 4096), delete(1)] {
        let refused = outcome(&mut runtime, &configured, "u", &[change]);
        assert_eq!(
            refused,
            (UNACCEPTABLE, users(&[])),
            "a user of the file stays as the file says"
        );
    }
}

/// A user of the configuration file with a credential for `m`.
fn in_the_file(m: Mechanism) -> UserCredentials {
    BTreeMap::from([(
        m,
        Credential::from_salted(m, b"salted", b"salt".to_vec(), 4096),
    )])
}
