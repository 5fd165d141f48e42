//! [`S3Options`] (how the backend uses any object store) and [`S3Config`]
//! (where an S3 bucket is and how to sign in). Plain serde data; `Debug`
//! never shows a secret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How an [`S3Store`](crate::S3Store) uses its object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Every object lives under this prefix (`tenants/app1`); leading and
    /// trailing `/` are ignored. Default `""`: the bucket's root. A longer
    /// prefix leaves less room for keys (see
    /// [`S3Store::max_key_len`](crate::S3Store::max_key_len)).
    pub prefix: String,
    /// The store lists objects in name order (S3 and the in-memory store
    /// do; the local file system does not). When true a scan stops reading
    /// the listing after `limit` entries; when false it reads the whole
    /// rest of the range and sorts it. Default true.
    pub ordered_listing: bool,
    /// When the store does not honour conditional PUTs
    /// (`PutMode::Create` / `PutMode::Update`), make conditional writes
    /// atomic with a lock **in this process** instead of refusing them.
    ///
    /// **Correct within one process only**: two processes (or two
    /// `S3Store`s over the same objects in one process) can still lose
    /// each other's updates. Meant for the local file system during
    /// development. Default false: such stores refuse atomic operations
    /// with `Error::Unsupported`.
    pub allow_local_locking: bool,
    /// Most requests in flight for one scan, `read_many` or bulk delete.
    /// Default 32.
    pub concurrency: usize,
    /// Objects whose last-seen ETag and record (without the value) the
    /// backend remembers, so that a `set` of a key it has seen is one
    /// conditional PUT instead of a GET and a PUT, and `keys` GETs only
    /// objects whose ETag changed (see [`cas`](crate::cas)). An entry
    /// holds the object's path, ETag, key and metadata. Another writer's
    /// change is never missed: it changes the ETag. At least 1 (every
    /// conditional write takes its `If-Match` ETag from here, or reads the
    /// object again); default 65,536.
    pub seen_objects: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            prefix: String::new(),
            ordered_listing: true,
            allow_local_locking: false,
            concurrency: 32,
            seen_objects: 65_536,
        }
    }
}

impl S3Options {
    /// Default options under `prefix`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        S3Options {
            prefix: prefix.into(),
            ..S3Options::default()
        }
    }

    /// Sets [`ordered_listing`](Self::ordered_listing).
    pub fn ordered_listing(mut self, ordered: bool) -> Self {
        self.ordered_listing = ordered;
        self
    }

    /// Sets [`allow_local_locking`](Self::allow_local_locking).
    pub fn allow_local_locking(mut self, allow: bool) -> Self {
        self.allow_local_locking = allow;
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets [`seen_objects`](Self::seen_objects).
    pub fn seen_objects(mut self, n: usize) -> Self {
        self.seen_objects = n;
        self
    }
}

/// Where an S3 (or S3-compatible) bucket is, for [`S3Store::s3`](crate::S3Store::s3).
///
/// Credentials not given here come from the standard `AWS_*` environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT`, …), as the AWS tools
/// read them. The secret key is never printed by `Debug`, never
/// serialized, and never put in an error.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (required).
    pub bucket: String,
    /// Prefix of every object (see [`S3Options::prefix`]). Default `""`.
    pub prefix: String,
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:9000`);
    /// default: AWS for the region. Requests use path-style URLs
    /// (`{endpoint}/{bucket}/{object}`).
    pub endpoint: Option<String>,
    /// Region; default `AWS_REGION` / `AWS_DEFAULT_REGION`, else
    /// `us-east-1`.
    pub region: Option<String>,
    /// Access key id; default `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// Secret access key; default `AWS_SECRET_ACCESS_KEY`. Never printed
    /// or serialized.
    #[serde(skip_serializing)]
    pub secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints. Default false, except that an `http://`
    /// endpoint on the loopback interface (`localhost`, `127.x.x.x`,
    /// `[::1]`) is always allowed.
    pub allow_http: bool,
    /// [`S3Options::concurrency`]; default 32.
    pub concurrency: Option<usize>,
    /// [`S3Options::seen_objects`]; default 65,536.
    pub seen_objects: Option<usize>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("allow_http", &self.allow_http)
            .field("concurrency", &self.concurrency)
            .field("seen_objects", &self.seen_objects)
            .finish()
    }
}

impl S3Config {
    /// A bucket with everything else from the environment.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            ..S3Config::default()
        }
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`endpoint`](Self::endpoint).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`region`](Self::region).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets both credentials.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// Sets [`allow_http`](Self::allow_http).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// Sets [`seen_objects`](Self::seen_objects).
    pub fn seen_objects(mut self, n: usize) -> Self {
        self.seen_objects = Some(n);
        self
    }

    /// The backend's options: the prefix, and the figures given here.
    pub(crate) fn options(&self) -> S3Options {
        let mut options = S3Options::with_prefix(self.prefix.clone());
        if let Some(n) = self.concurrency {
            options.concurrency = n;
        }
        if let Some(n) = self.seen_objects {
            options.seen_objects = n;
        }
        options
    }

    /// Whether plain HTTP is allowed: asked for, or a loopback endpoint.
    pub(crate) fn http_allowed(&self) -> bool {
        self.allow_http || self.endpoint.as_deref().is_some_and(is_loopback_http)
    }

    /// Replaces the secrets in `text` (a driver's message) with `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in [&self.secret_access_key, &self.access_key_id]
            .into_iter()
            .flatten()
        {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

/// `http://localhost…`, `http://127.x.x.x…`, `http://[::1]…`: an address
/// (not a name) on the loopback interface, or `localhost`.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = S3Config::new("b").credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG");
        let d = format!("{c:?}");
        assert!(!d.contains("wJalr"), "{d}");
        assert!(!d.contains("AKIDEXAMPLE"), "{d}");
        assert!(d.contains("bucket: \"b\""), "{d}");
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert!(!json.contains("wJalr"), "{json}");
        assert_eq!(
            c.scrub("bad key wJalrXUtnFEMI/K7MDENG for AKIDEXAMPLE"),
            "bad key *** for ***"
        );
    }

    #[test]
    fn loopback_endpoints_allow_http() {
        for yes in [
            "http://127.0.0.1:5999",
            "http://localhost",
            "http://localhost:9000/x",
            "http://[::1]:9000",
        ] {
            assert!(S3Config::new("b").endpoint(yes).http_allowed(), "{yes}");
        }
        for no in [
            "http://10.0.0.1:9000",
            "https://127.0.0.1",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://user@10.0.0.1",
        ] {
            assert!(!S3Config::new("b").endpoint(no).http_allowed(), "{no}");
        }
        assert!(S3Config::new("b").allow_http(true).http_allowed());
    }

    #[test]
    fn options_default_and_deserialize() {
        let o: S3Options = serde_json::from_str(r#"{"prefix": "kv"}"#).unwrap_or_default();
        assert_eq!(o.prefix, "kv");
        assert!(o.ordered_listing);
        assert!(!o.allow_local_locking);
        assert_eq!(o.concurrency, 32);
    }
}
