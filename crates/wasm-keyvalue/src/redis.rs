//! [`RedisBackend`]: buckets in a Redis server, for replicas on more than one machine.
//!
//! A bucket is one Redis hash (`airssys:kv:{<bucket>}`), its byte total one string
//! beside it (`airssys:kv:{<bucket>}:bytes`; the braces keep both in one cluster slot).
//! Every write is one Lua script, which Redis runs atomically: the quota check, the
//! write and the total together. A batch runs in chunks of at most
//! [`CHUNK_PAIRS`] pairs and about [`CHUNK_BYTES`] bytes, each one script, so that no
//! call holds the shared server for more than a few milliseconds; each chunk is all or
//! nothing, the batch is not (as `wasi:keyvalue/batch` allows: a failed batch may have
//! written its first chunks). The scripts count [`ENTRY_OVERHEAD_BYTES`] per entry;
//! totals written before they did count less, until the entries are rewritten.

use std::sync::Arc;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use airssys_wasm_core::text::{redact_url, redact_urls_in};

use airssys_wasm_core::keyvalue::{
    BucketId, Counter, ENTRY_OVERHEAD_BYTES, KeyValueBackend, KeyValueBucket, KeyValueError,
    KvFuture,
};

/// The most pairs (or keys) one script of a batch handles.
pub const CHUNK_PAIRS: usize = 100;

/// About the most bytes one script of a batch carries (a larger single value is one
/// chunk of its own).
pub const CHUNK_BYTES: usize = 1 << 20;

/// `script` with `OVERHEAD` replaced by [`ENTRY_OVERHEAD_BYTES`].
fn with_overhead(script: &str) -> Script {
    Script::new(&script.replace("OVERHEAD", &ENTRY_OVERHEAD_BYTES.to_string()))
}

/// `items` in chunks of at most [`CHUNK_PAIRS`] and about [`CHUNK_BYTES`] (by `size`).
fn chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < CHUNK_PAIRS && (n == 0 || bytes + size(&rest[n]) <= CHUNK_BYTES)
        {
            bytes += size(&rest[n]);
            n += 1;
        }
        let (chunk, after) = rest.split_at(n);
        rest = after;
        Some(chunk)
    })
}

/// Sets pairs (ARGV: max_bytes, then key, value, key, value, …) all or none: returns
/// `{1, used, would_hold}` when written, `{0, used, would_hold}` when refused.
const SET_MANY: &str = r"
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local max = tonumber(ARGV[1])
local sizes = {}
local now = used
for i = 2, #ARGV, 2 do
  local k = ARGV[i]
  local old = sizes[k]
  if old == nil then
    if redis.call('HEXISTS', KEYS[1], k) == 1 then
      old = string.len(k) + redis.call('HSTRLEN', KEYS[1], k) + OVERHEAD
    else
      old = 0
    end
  end
  local new = string.len(k) + string.len(ARGV[i + 1]) + OVERHEAD
  now = now - old + new
  sizes[k] = new
end
if now > max and now > used then
  return {0, used, now}
end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[2], now)
return {1, used, now}
";

/// Deletes keys (ARGV), keeping the total.
const DELETE_MANY: &str = r"
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 1, #ARGV do
  local k = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], k) == 1 then
    used = used - string.len(k) - redis.call('HSTRLEN', KEYS[1], k) - OVERHEAD
    redis.call('HDEL', KEYS[1], k)
  end
end
if used < 0 then used = 0 end
redis.call('SET', KEYS[2], used)
return used
";

/// Increments a decimal value (ARGV: key, delta, max_bytes, the value's pattern):
/// `{1, sum as text}`, `{0, used, would_hold}` when over the quota, `{-1, reason}` when
/// not a number.
const INCREMENT: &str = r"
local k = ARGV[1]
local old = redis.call('HGET', KEYS[1], k)
if old and not string.match(old, ARGV[4]) then
  return {-1, 'its value is not a decimal number of the counter'}
end
local oldsize = 0
if old then oldsize = string.len(k) + string.len(old) + OVERHEAD end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local ok = pcall(redis.call, 'HINCRBY', KEYS[1], k, ARGV[2])
if not ok then
  return {-1, 'the sum does not fit in a 64-bit signed integer (Redis counts in i64)'}
end
-- The sum as Redis wrote it (a Lua number would lose digits past 2^53).
local sum = redis.call('HGET', KEYS[1], k)
local now = used - oldsize + string.len(k) + string.len(sum) + OVERHEAD
if now > tonumber(ARGV[3]) and now > used then
  if old then redis.call('HSET', KEYS[1], k, old) else redis.call('HDEL', KEYS[1], k) end
  return {0, used, now}
end
redis.call('SET', KEYS[2], now)
return {1, sum}
";

/// Sets a key only if it still holds what was read (ARGV: key, '1' and the expected
/// value or '0' and '' for absent, the value, max_bytes): `{1}` set, `{0}` changed,
/// `{-1, used, would_hold}` over the quota.
const COMPARE_AND_SWAP: &str = r"
local k = ARGV[1]
local cur = redis.call('HGET', KEYS[1], k)
if ARGV[2] == '1' then
  if cur ~= ARGV[3] then return {0} end
elseif cur then
  return {0}
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local oldsize = 0
if cur then oldsize = string.len(k) + string.len(cur) + OVERHEAD end
local now = used - oldsize + string.len(k) + string.len(ARGV[4]) + OVERHEAD
if now > tonumber(ARGV[5]) and now > used then
  return {-1, used, now}
end
redis.call('HSET', KEYS[1], k, ARGV[4])
redis.call('SET', KEYS[2], now)
return {1}
";

/// Buckets in a Redis server (one connection, multiplexed and reconnected by
/// `redis`'s connection manager).
#[derive(Clone)]
pub struct RedisBackend {
    url: String,
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
}

struct Scripts {
    set_many: Script,
    delete_many: Script,
    increment: Script,
    compare_and_swap: Script,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to the server at `url` (`redis://host:port/db`, `rediss://` for TLS is
    /// not built in) and checks it answers.
    ///
    /// # Errors
    ///
    /// [`KeyValueError::Backend`] naming the URL when it is not valid or the server
    /// does not answer.
    pub async fn connect(url: &str) -> Result<Self, KeyValueError> {
        let shown = redact_url(url);
        let fail = |e: redis::RedisError| KeyValueError::Backend {
            store: shown.clone(),
            message: format!(
                "{}; check that the Redis server runs and the URL in the runtime \
                 configuration is right",
                redact_urls_in(&e.to_string())
            ),
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let mut conn = client.get_connection_manager().await.map_err(fail)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(Self {
            url: shown,
            conn,
            scripts: Arc::new(Scripts {
                set_many: with_overhead(SET_MANY),
                delete_many: with_overhead(DELETE_MANY),
                increment: with_overhead(INCREMENT),
                compare_and_swap: with_overhead(COMPARE_AND_SWAP),
            }),
        })
    }

    /// The server's URL, its user information (a password) redacted.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl KeyValueBackend for RedisBackend {
    fn open<'a>(&'a self, id: &'a BucketId) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        let name = id.storage_name();
        let bucket = RedisBucket {
            id: id.clone(),
            hash: format!("airssys:kv:{{{name}}}"),
            bytes: format!("airssys:kv:{{{name}}}:bytes"),
            backend: self.clone(),
        };
        Box::pin(std::future::ready(Ok(
            Arc::new(bucket) as Arc<dyn KeyValueBucket>
        )))
    }
}

struct RedisBucket {
    id: BucketId,
    hash: String,
    bytes: String,
    backend: RedisBackend,
}

impl RedisBucket {
    fn conn(&self) -> ConnectionManager {
        self.backend.conn.clone()
    }

    fn fail(&self, e: &redis::RedisError) -> KeyValueError {
        KeyValueError::Backend {
            store: self.backend.url.clone(),
            message: redact_urls_in(&e.to_string()).into_owned(),
        }
    }

    fn quota(&self, used: i64, would_hold: i64, max_bytes: u64) -> KeyValueError {
        KeyValueError::QuotaExceeded {
            bucket: self.id.to_string(),
            used: u64::try_from(used).unwrap_or(0),
            would_hold: u64::try_from(would_hold).unwrap_or(0),
            max_bytes,
        }
    }

    /// Sets `pairs`, chunk by chunk (each chunk all or none).
    async fn set_pairs(
        &self,
        pairs: &[(&str, &[u8])],
        max_bytes: u64,
    ) -> Result<(), KeyValueError> {
        for chunk in chunks(pairs, |(k, v)| k.len() + v.len()) {
            self.set_chunk(chunk, max_bytes).await?;
        }
        Ok(())
    }

    async fn set_chunk(
        &self,
        pairs: &[(&str, &[u8])],
        max_bytes: u64,
    ) -> Result<(), KeyValueError> {
        let mut inv = self.backend.scripts.set_many.prepare_invoke();
        inv.key(&self.hash).key(&self.bytes).arg(max_bytes);
        for (k, v) in pairs {
            inv.arg(*k).arg(*v);
        }
        let (written, used, would_hold): (i64, i64, i64) = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.fail(&e))?;
        if written == 1 {
            Ok(())
        } else {
            Err(self.quota(used, would_hold, max_bytes))
        }
    }

    /// Deletes `keys`, chunk by chunk.
    async fn delete_keys(&self, keys: &[&str]) -> Result<(), KeyValueError> {
        for chunk in chunks(keys, |k| k.len()) {
            self.delete_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn delete_chunk(&self, keys: &[&str]) -> Result<(), KeyValueError> {
        let mut inv = self.backend.scripts.delete_many.prepare_invoke();
        inv.key(&self.hash).key(&self.bytes);
        for k in keys {
            inv.arg(*k);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(())
    }
}

impl KeyValueBucket for RedisBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.conn()
                .hget(&self.hash, key)
                .await
                .map_err(|e| self.fail(&e))
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], max_bytes: u64) -> KvFuture<'a, ()> {
        Box::pin(async move { self.set_pairs(&[(key, value)], max_bytes).await })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.delete_keys(&[key]).await })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move {
            self.conn()
                .hexists(&self.hash, key)
                .await
                .map_err(|e| self.fail(&e))
        })
    }

    fn list_keys(&self, cursor: u64, limit: u32) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        Box::pin(async move {
            // Redis's own cursor: 0 starts, 0 returned ends. (HSCAN may return a key
            // twice across pages while the hash changes, as Redis documents.)
            let (next, flat): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                .arg(&self.hash)
                .arg(cursor)
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.fail(&e))?;
            let keys = flat
                .chunks(2)
                .map(|kv| String::from_utf8_lossy(&kv[0]).into_owned())
                .collect();
            Ok((keys, (next != 0).then_some(next)))
        })
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i128,
        counter: Counter,
        max_bytes: u64,
    ) -> KvFuture<'a, i128> {
        Box::pin(async move {
            let not = |reason: String| KeyValueError::NotANumber {
                bucket: self.id.to_string(),
                key: key.to_owned(),
                reason,
            };
            let delta = i64::try_from(delta)
                .map_err(|_| not(format!("a delta of {delta} does not fit Redis's i64")))?;
            let reply: Vec<redis::Value> = self
                .backend
                .scripts
                .increment
                .key(&self.hash)
                .key(&self.bytes)
                .arg(key)
                .arg(delta)
                .arg(max_bytes)
                .arg(match counter {
                    Counter::U64 => "^%d+$",
                    _ => "^-?%d+$",
                })
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| self.fail(&e))?;
            let int = |i: usize| match reply.get(i) {
                Some(redis::Value::Int(n)) => Some(*n),
                _ => None,
            };
            let text = |i: usize| {
                reply
                    .get(i)
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                    .unwrap_or_else(|| "an unexpected reply".into())
            };
            match int(0) {
                Some(1) => text(1)
                    .parse()
                    .map_err(|_| not(format!("Redis answered `{}`", text(1)))),
                Some(0) => Err(self.quota(int(1).unwrap_or(0), int(2).unwrap_or(0), max_bytes)),
                _ => Err(not(text(1))),
            }
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        max_bytes: u64,
    ) -> KvFuture<'a, bool> {
        Box::pin(async move {
            let (present, expected) = match expected {
                Some(v) => ("1", v),
                None => ("0", &b""[..]),
            };
            let reply: Vec<i64> = self
                .backend
                .scripts
                .compare_and_swap
                .key(&self.hash)
                .key(&self.bytes)
                .arg(key)
                .arg(present)
                .arg(expected)
                .arg(value)
                .arg(max_bytes)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| self.fail(&e))?;
            match reply.as_slice() {
                [1] => Ok(true),
                [-1, used, would_hold] => Err(self.quota(*used, *would_hold, max_bytes)),
                _ => Ok(false),
            }
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            redis::cmd("HMGET")
                .arg(&self.hash)
                .arg(keys)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.fail(&e))
        })
    }

    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)], max_bytes: u64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let pairs: Vec<(&str, &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            self.set_pairs(&pairs, max_bytes).await
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.delete_keys(&keys).await
        })
    }

    fn used_bytes(&self) -> KvFuture<'_, u64> {
        Box::pin(async move {
            let used: Option<u64> = self
                .conn()
                .get(&self.bytes)
                .await
                .map_err(|e| self.fail(&e))?;
            Ok(used.unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_chunked_by_count_and_bytes() {
        let small = vec![1usize; 250];
        let sizes: Vec<usize> = chunks(&small, |&n| n).map(<[usize]>::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big = [CHUNK_BYTES / 2, CHUNK_BYTES / 2, 1, CHUNK_BYTES * 3, 1];
        let sizes: Vec<usize> = chunks(&big, |&n| n).map(<[usize]>::len).collect();
        assert_eq!(sizes, [2, 1, 1, 1]);
        assert_eq!(chunks(&[] as &[usize], |&n| n).count(), 0);
    }

    #[test]
    fn every_script_counts_the_overhead() {
        for script in [SET_MANY, DELETE_MANY, INCREMENT, COMPARE_AND_SWAP] {
            assert!(script.contains("OVERHEAD"));
        }
    }
}
