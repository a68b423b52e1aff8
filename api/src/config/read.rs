//! How settings are read: for one section of `Settings`, the variables it has a field for are
//! asked for, the ones set become a figment, and serde extracts the section from it over the
//! section's defaults. figment's error for a refused value becomes the one-line `SettingsError`.
use std::collections::BTreeMap;

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use serde::de::{DeserializeOwned, Deserializer, Visitor};

use super::SettingsError;

/// Reads the section `T`: asks `get` for each variable `T` has a field for (a blank value counts
/// as unset, other variables are never asked for) and extracts `T` from those that are set.
pub(super) fn section<T: DeserializeOwned>(get: &impl Fn(&str) -> Option<String>) -> Result<T, SettingsError> {
    let names = variables_of::<T>();
    let set: BTreeMap<&str, String> =
        names.iter().filter_map(|&name| Some((name, get(name).filter(|v| !v.trim().is_empty())?))).collect();
    Figment::from(Serialized::defaults(set)).extract().map_err(|error| rejected(error, names))
}

/// figment's error names the variable in its path; the value's helper (`values`) refused it
/// with what may be shown and why.
fn rejected(error: figment::Error, names: &'static [&'static str]) -> SettingsError {
    let name = error.path.last().and_then(|key| names.iter().find(|name| *name == key)).copied().unwrap_or("?");
    match error.kind {
        Kind::InvalidValue(Actual::Str(value), reason) => SettingsError { name, value, reason },
        // Every field reads text, so nothing else is expected; the value, which may be a secret,
        // is not shown.
        _ => SettingsError { name, value: String::new(), reason: "could not be read".to_owned() },
    }
}

/// The variable names of a section: the field names (renames applied, skipped fields left out)
/// that serde's derive hands to `deserialize_struct`.
fn variables_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _only_the_names = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that records the field names it is asked for, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("only the field names were asked for"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("a section of the settings is a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
