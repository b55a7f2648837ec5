//! Typed metadata over any [`Store`]: write a `T: Serialize` as an object's metadata
//! ([`TypedStoreExt::put_with`], [`TypedStoreExt::update_metadata_with`]) and read it back as a `T: DeserializeOwned`
//! ([`TypedStoreExt::head_as`], [`TypedStoreExt::query_as`]), through the
//! [`to_metadata`]/[`from_metadata`] mapping. Also [`as_timestamp`], the serde adapter that
//! stores a `time::OffsetDateTime` field as a metadata timestamp.
//!
//! An extension trait, like [`StoreExt`](crate::StoreExt): implemented for every [`Store`]
//! (the embedded database and the network client alike), with nothing for implementors to
//! write.

use std::future::Future;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{
    from_metadata, to_metadata, Condition, Error, Key, ObjectInfo, Query, Result, Store, StoreExt,
};

/// An object with its metadata read as `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedObject<T> {
    /// The object as stored (its `metadata` is the document `metadata` was read from).
    pub info: ObjectInfo,
    /// The metadata document as a `T`.
    pub metadata: T,
}

/// One page of a query with typed metadata, in the query's order.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedPage<T> {
    /// The matching objects.
    pub objects: Vec<TypedObject<T>>,
    /// Continuation token of the next page; `None` at the end.
    pub next: Option<String>,
}

/// Typed metadata over any [`Store`].
///
/// Errors of the mapping are [`Error::InvalidMetadata`]: a value that metadata cannot hold (an
/// integer above `i64::MAX`) when writing, and a document that does not fit `T` (a missing
/// field, a string where a number is expected) when reading, naming the key.
pub trait TypedStoreExt: Store {
    /// Stores `body` under `key` with `metadata` (any struct or map) as its metadata document.
    fn put_with<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        body: impl Into<Bytes>,
        metadata: &T,
    ) -> impl Future<Output = Result<ObjectInfo>> + Send {
        // Converted before the future starts, so neither `T` nor the body type need be `Send`.
        let body = body.into();
        let document = to_metadata(metadata);
        async move { self.put_bytes(key, body, document?).await }
    }

    /// Replaces an existing object's metadata document with `metadata`, keeping its blob (as
    /// [`Store::update_metadata`]).
    fn update_metadata_with<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        metadata: &T,
        condition: Condition,
    ) -> impl Future<Output = Result<ObjectInfo>> + Send {
        let document = to_metadata(metadata);
        async move { self.update_metadata(key, document?, condition).await }
    }

    /// Describes an object, its metadata read as `T`.
    fn head_as<T: DeserializeOwned + Send>(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<TypedObject<T>>> + Send {
        async move { typed_object(self.head(key).await?) }
    }

    /// Runs a query (one page, as [`Store::query`]) and reads each object's metadata as `T`.
    fn query_as<T: DeserializeOwned + Send>(
        &self,
        query: &Query,
    ) -> impl Future<Output = Result<TypedPage<T>>> + Send {
        async move {
            let page = self.query(query).await?;
            Ok(TypedPage {
                objects: page
                    .objects
                    .into_iter()
                    .map(typed_object)
                    .collect::<Result<_>>()?,
                next: page.next,
            })
        }
    }
}

impl<S: Store + ?Sized> TypedStoreExt for S {}

fn typed_object<T: DeserializeOwned>(info: ObjectInfo) -> Result<TypedObject<T>> {
    let metadata = from_metadata(info.metadata.clone()).map_err(|e| Error::InvalidMetadata {
        reason: format!(
            "metadata of {} does not fit {}: {}",
            info.key,
            std::any::type_name::<T>(),
            reason_of(e)
        ),
    })?;
    Ok(TypedObject { info, metadata })
}

fn reason_of(error: Error) -> String {
    match error {
        Error::InvalidMetadata { reason } => reason,
        other => other.to_string(),
    }
}

/// Serde adapter storing a `time::OffsetDateTime` as a metadata timestamp (in UTC; nanosecond
/// precision): `#[serde(with = "asterope::as_timestamp")]` on the field, or
/// `as_timestamp::option` on an `Option<OffsetDateTime>`. (A [`Timestamp`](crate::Timestamp)
/// field needs no adapter.)
///
/// Through other serde formats it is the [`Timestamp`](crate::Timestamp) map
/// `{"secs", "nanos"}`.
pub mod as_timestamp {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    use crate::Timestamp;

    /// Writes the date-time as a timestamp.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        Timestamp::from(*t).serialize(s)
    }

    /// Reads a timestamp as a UTC date-time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let t = Timestamp::deserialize(d)?;
        OffsetDateTime::try_from(t).map_err(serde::de::Error::custom)
    }

    /// The same for an `Option<OffsetDateTime>` (`None` is null).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};
        use time::OffsetDateTime;

        use crate::Timestamp;

        /// Writes the date-time as a timestamp, `None` as null.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            t.map(Timestamp::from).serialize(s)
        }

        /// Reads a timestamp or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<Timestamp>::deserialize(d)?
                .map(OffsetDateTime::try_from)
                .transpose()
                .map_err(serde::de::Error::custom)
        }
    }
}
