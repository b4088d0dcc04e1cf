//! The webhook's own certificates, pure: a CA (10 years) and a serving certificate for the webhook's
//! host names and addresses (1 year), signed by it; when each is due for renewal; and what the
//! Secret that keeps them holds. The API server trusts the CA through the webhook configuration's
//! `caBundle`, which holds the current CA and, after a CA renewal, the previous one (valid for another
//! year then; it stays in the bundle, expired and harmless, until the next CA renewal) — so replicas
//! still serving a certificate of the old CA keep working until they reload.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// The CAs the API server is to trust: the current one, and the previous one while it is valid.
pub const CA_BUNDLE: &str = "ca-bundle.crt";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// Annotations of the Secret: when the CA and the serving certificate expire (RFC 3339), and the names
/// the serving certificate is for.
pub const ANNOTATION_CA_NOT_AFTER: &str = "ferrofluid.io/ca-not-after";
pub const ANNOTATION_CERT_NOT_AFTER: &str = "ferrofluid.io/cert-not-after";
pub const ANNOTATION_CERT_HOSTS: &str = "ferrofluid.io/cert-hosts";

const CA_NAME: &str = "ferrofluid-webhook-ca";
pub const CA_LIFETIME: Duration = Duration::days(3650);
pub const CERT_LIFETIME: Duration = Duration::days(365);
/// A serving certificate is renewed this long before it expires; the CA a year before.
pub const CERT_RENEW_BEFORE: Duration = Duration::days(30);
pub const CA_RENEW_BEFORE: Duration = Duration::days(365);

/// What the Secret holds: its data (PEM) and annotations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stored {
    pub data: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// What to do with what is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Keep,
    /// A new serving certificate, signed by the stored CA.
    NewCert,
    /// A new CA and serving certificate.
    NewCa,
}

fn parse_time(s: Option<&String>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s?, &time::format_description::well_known::Rfc3339).ok()
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The plan for `stored` at `now`, for serving certificates for `hosts`.
pub fn plan(stored: Option<&Stored>, hosts: &[String], now: OffsetDateTime) -> Plan {
    let Some(s) = stored else { return Plan::NewCa };
    let has = |k: &str| s.data.get(k).is_some_and(|v| !v.is_empty());
    if ![CA_CERT, CA_KEY, TLS_CERT, TLS_KEY].iter().all(|k| has(k)) {
        return Plan::NewCa;
    }
    match parse_time(s.annotations.get(ANNOTATION_CA_NOT_AFTER)) {
        Some(t) if t - now > CA_RENEW_BEFORE => {}
        _ => return Plan::NewCa,
    }
    let due = parse_time(s.annotations.get(ANNOTATION_CERT_NOT_AFTER)).is_none_or(|t| t - now <= CERT_RENEW_BEFORE);
    let same_hosts = s.annotations.get(ANNOTATION_CERT_HOSTS).map(String::as_str) == Some(hosts.join(",").as_str());
    if due || !same_hosts { Plan::NewCert } else { Plan::Keep }
}

fn ca_params(not_before: OffsetDateTime) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = not_before;
    p.not_after = not_before + CA_LIFETIME;
    Ok(p)
}

/// Carries out `plan` (not `Keep`) on `stored`: the new contents. Hosts are DNS names or IP addresses.
pub fn renew(
    plan: Plan,
    stored: Option<&Stored>,
    hosts: &[String],
    now: OffsetDateTime,
) -> Result<Stored, rcgen::Error> {
    let mut out = stored.cloned().unwrap_or_default();
    // Back-dated a little: clocks of the API server and the webhook may differ.
    let start = now - Duration::minutes(5);
    let (ca_params, ca_key) = match (plan, stored) {
        (Plan::NewCert, Some(s)) => {
            let key = KeyPair::from_pem(s.data.get(CA_KEY).map(String::as_str).unwrap_or_default())?;
            // The issuer is named as the stored CA was: only its name and key go into what it signs.
            (ca_params(start)?, key)
        }
        _ => {
            let key = KeyPair::generate()?;
            let params = ca_params(start)?;
            let ca_pem = params.self_signed(&key)?.pem();
            let mut bundle = ca_pem.clone();
            if let Some(s) = stored
                && let Some(old) = s.data.get(CA_CERT)
                && parse_time(s.annotations.get(ANNOTATION_CA_NOT_AFTER)).is_some_and(|t| t > now)
            {
                bundle.push_str(old);
            }
            out.data.insert(CA_CERT.into(), ca_pem);
            out.data.insert(CA_KEY.into(), key.serialize_pem());
            out.data.insert(CA_BUNDLE.into(), bundle);
            out.annotations.insert(ANNOTATION_CA_NOT_AFTER.into(), fmt_time(params.not_after));
            (params, key)
        }
    };
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, hosts.first().cloned().unwrap_or_else(|| "ferrofluid-webhook".into()));
    p.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(h.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.not_before = start;
    p.not_after = start + CERT_LIFETIME;
    let cert = p.signed_by(&key, &issuer)?;
    out.data.insert(TLS_CERT.into(), cert.pem());
    out.data.insert(TLS_KEY.into(), key.serialize_pem());
    out.data
        .entry(CA_BUNDLE.into())
        .or_insert_with(|| stored.and_then(|s| s.data.get(CA_CERT).cloned()).unwrap_or_default());
    out.annotations.insert(ANNOTATION_CERT_NOT_AFTER.into(), fmt_time(p.not_after));
    out.annotations.insert(ANNOTATION_CERT_HOSTS.into(), hosts.join(","));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["ferrofluid-webhook.fluid-system.svc".into(), "127.0.0.1".into()]
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    #[test]
    fn nothing_stored_means_a_new_ca_and_then_nothing_to_do() {
        assert_eq!(plan(None, &hosts(), now()), Plan::NewCa);
        let s = renew(Plan::NewCa, None, &hosts(), now()).expect("renew");
        for k in [CA_CERT, CA_KEY, CA_BUNDLE, TLS_CERT, TLS_KEY] {
            assert!(s.data.get(k).is_some_and(|v| v.starts_with("-----BEGIN")), "{k}");
        }
        assert_eq!(s.data[CA_BUNDLE], s.data[CA_CERT]);
        assert_eq!(plan(Some(&s), &hosts(), now()), Plan::Keep);
        assert_eq!(plan(Some(&s), &hosts()[..1], now()), Plan::NewCert, "other names: a new certificate");
    }

    #[test]
    fn certificates_are_renewed_before_they_expire_the_ca_kept_when_it_can_be() {
        let s = renew(Plan::NewCa, None, &hosts(), now()).expect("renew");
        let later = now() + CERT_LIFETIME - Duration::days(10);
        assert_eq!(plan(Some(&s), &hosts(), later), Plan::NewCert);
        let r = renew(Plan::NewCert, Some(&s), &hosts(), later).expect("renew");
        assert_eq!(r.data[CA_CERT], s.data[CA_CERT], "same CA");
        assert_ne!(r.data[TLS_CERT], s.data[TLS_CERT]);
        assert_eq!(plan(Some(&r), &hosts(), later), Plan::Keep);
        // Near the CA's end: a new CA, the old one still in the bundle.
        let late = now() + CA_LIFETIME - Duration::days(100);
        assert_eq!(plan(Some(&r), &hosts(), late), Plan::NewCa);
        let n = renew(Plan::NewCa, Some(&r), &hosts(), late).expect("renew");
        assert_ne!(n.data[CA_CERT], r.data[CA_CERT]);
        assert!(n.data[CA_BUNDLE].starts_with(&n.data[CA_CERT]) && n.data[CA_BUNDLE].ends_with(&r.data[CA_CERT]));
    }

    #[test]
    fn a_broken_secret_starts_over() {
        let mut s = renew(Plan::NewCa, None, &hosts(), now()).expect("renew");
        s.data.remove(TLS_KEY);
        assert_eq!(plan(Some(&s), &hosts(), now()), Plan::NewCa);
    }
}
