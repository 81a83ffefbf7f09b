//! SaslHandshake (v0–1), SaslAuthenticate (v0–2) and the SCRAM user APIs
//! (AlterUserScramCredentials, DescribeUserScramCredentials).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use std::collections::BTreeSet;

use super::{Call, Context, Reply, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::{Error, Result};
use crate::security::credentials::Alteration;
use crate::session::Session;

pub(super) fn handshake(
    ctx: &Context,
    req: SaslHandshakeRequest,
    version: i16,
    session: &mut Session,
) -> SaslHandshakeResponse {
    let enabled = &ctx.config.sasl.mechanisms;
    let mut response = SaslHandshakeResponse::default();
    if let Err(code) = session.auth.handshake(&req.mechanism, enabled, version) {
        response.error_code = code.code();
    }
    response.mechanisms = enabled.iter().map(|m| str_bytes(m)).collect();
    response
}

pub(super) fn authenticate(
    ctx: &Context,
    req: SaslAuthenticateRequest,
    _version: i16,
    session: &mut Session,
) -> SaslAuthenticateResponse {
    let reauth = ctx.config.sasl.connections_max_reauth_ms;
    let mut response = SaslAuthenticateResponse::default();
    match session
        .auth
        .authenticate(&req.auth_bytes, &ctx.credentials, reauth)
    {
        Ok((reply, lifetime)) => {
            if lifetime.is_some() {
                session.authenticated();
            }
            response.auth_bytes = Bytes::from(reply);
            response.session_lifetime_ms = lifetime.unwrap_or(0);
        }
        Err((code, message)) => {
            response.error_code = code.code();
            response.error_message = Some(str_bytes(&message));
        }
    }
    response
}

/// After SaslHandshake v0 the client sends bare tokens (a size, then the
/// bytes) and gets bare tokens back; a failure closes the connection.
pub(super) fn raw_token(ctx: &Context, token: &[u8], session: &mut Session) -> Result<Reply> {
    let reauth = ctx.config.sasl.connections_max_reauth_ms;
    match session.auth.authenticate(token, &ctx.credentials, reauth) {
        Ok((reply, lifetime)) => {
            if lifetime.is_some() {
                session.authenticated();
            }
            let mut frame = BytesMut::with_capacity(4 + reply.len());
            frame.put_u32(reply.len() as u32);
            frame.extend_from_slice(&reply);
            Ok(Reply::Frame(vec![frame.freeze().into()]))
        }
        Err((_, message)) => Err(Error::Protocol(message)),
    }
}

/// AlterUserScramCredentials; the authorizer needs ALTER on the cluster.
pub(super) async fn alter_users(
    ctx: &Call<'_>,
    req: AlterUserScramCredentialsRequest,
    _version: i16,
) -> Result<AlterUserScramCredentialsResponse> {
    let mut changes: Vec<Alteration> = req
        .deletions
        .iter()
        .map(|d| Alteration::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    changes.extend(req.upsertions.iter().map(|u| Alteration::Upsert {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        iterations: u.iterations,
        salt: u.salt.to_vec(),
        salted_password: u.salted_password.to_vec(),
    }));
    let results = match ctx.check(op::ALTER, resource::CLUSTER, CLUSTER_NAME) {
        Err(refused) => {
            let users: BTreeSet<String> = changes.iter().map(|c| c.user().to_string()).collect();
            let refused = Err((refused, "not authorized to alter credentials".to_string()));
            users.into_iter().map(|u| (u, refused.clone())).collect()
        }
        Ok(()) => {
            let credentials = ctx.credentials.clone();
            tokio::task::spawn_blocking(move || credentials.alter(&changes))
                .await
                .map_err(|e| Error::Protocol(format!("credential update panicked: {e}")))?
        }
    };
    let mut response = AlterUserScramCredentialsResponse::default();
    response.results = results
        .into_iter()
        .map(|(user, result)| {
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = str_bytes(&user);
            if let Err((code, message)) = result {
                r.error_code = code.code();
                r.error_message = Some(str_bytes(&message));
            }
            r
        })
        .collect();
    Ok(response)
}

/// DescribeUserScramCredentials; the authorizer needs DESCRIBE on the cluster.
pub(super) async fn describe_users(
    ctx: &Call<'_>,
    req: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> Result<DescribeUserScramCredentialsResponse> {
    if let Err(refused) = ctx.check(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
        let mut response = DescribeUserScramCredentialsResponse::default();
        response.error_code = refused.code();
        return Ok(response);
    }
    let users: Option<Vec<String>> = req
        .users
        .map(|us| us.iter().map(|u| u.name.to_string()).collect());
    let mut response = DescribeUserScramCredentialsResponse::default();
    response.results = ctx
        .credentials
        .describe(users.as_deref())
        .into_iter()
        .map(|(user, found)| {
            let mut r = DescribeUserScramCredentialsResult::default();
            r.user = str_bytes(&user);
            match found {
                Ok(infos) => {
                    r.credential_infos = infos
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            let mut c = CredentialInfo::default();
                            c.mechanism = mechanism;
                            c.iterations = iterations;
                            c
                        })
                        .collect();
                }
                Err(code) => {
                    r.error_code = code.code();
                    r.error_message = Some(str_bytes(
                        "Attempt to describe a user credential that does not exist",
                    ));
                }
            }
            r
        })
        .collect();
    Ok(response)
}
