//! Reading typed values out of a row, with errors that name the row.

use hermes_crds::Plan;
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::Error as ValueError;
use sqlx::any::{Any, AnyRow};
use sqlx::{Decode, Row, Type};

use super::{Result, SqlError};
use crate::CustomerId;

/// A row being read, with the table and key every error names.
pub(super) struct RowReader<'r> {
    row: &'r AnyRow,
    table: &'static str,
    key: String,
    key_column: &'static str,
}

impl<'r> RowReader<'r> {
    /// Starts reading `row` of `table`, whose key is the text column `key_column`.
    pub(super) fn new(row: &'r AnyRow, table: &'static str, key_column: &'static str) -> Result<Self> {
        let mut reader = Self {
            row,
            table,
            key: String::from("?"),
            key_column,
        };
        reader.key = reader.get(key_column)?;
        Ok(reader)
    }

    /// The value of `column`, decoded as `T`.
    pub(super) fn get<T>(&self, column: &str) -> Result<T>
    where
        T: Decode<'r, Any> + Type<Any>,
    {
        self.row
            .try_get(column)
            .map_err(|error| self.corrupt(format!("column {column}: {error}")))
    }

    /// The key column, as a customer id.
    pub(super) fn customer_id(&self) -> Result<CustomerId> {
        CustomerId::new(self.key.clone())
            .map_err(|error| self.corrupt(format!("column {}: {error}", self.key_column)))
    }

    /// A plan name column.
    pub(super) fn plan(&self, column: &str) -> Result<Plan> {
        let name: String = self.get(column)?;
        Plan::deserialize(name.as_str().into_deserializer())
            .map_err(|error: ValueError| self.corrupt(format!("column {column}: {error}")))
    }

    /// A 0/1 column.
    pub(super) fn boolean(&self, column: &str) -> Result<bool> {
        match self.get::<i64>(column)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.corrupt(format!("column {column}: {other} is neither 0 nor 1"))),
        }
    }

    /// A non-negative integer column that fits `T`.
    pub(super) fn number<T: TryFrom<i64>>(&self, column: &str) -> Result<T> {
        let value: i64 = self.get(column)?;
        T::try_from(value).map_err(|_| self.corrupt(format!("column {column}: {value} is out of range")))
    }

    /// A nullable non-negative integer column that fits `T`.
    pub(super) fn optional_number<T: TryFrom<i64>>(&self, column: &str) -> Result<Option<T>> {
        let Some(value) = self.get::<Option<i64>>(column)? else {
            return Ok(None);
        };
        T::try_from(value)
            .map(Some)
            .map_err(|_| self.corrupt(format!("column {column}: {value} is out of range")))
    }

    /// A unix-microseconds column.
    pub(super) fn timestamp(&self, column: &str) -> Result<Timestamp> {
        let micros: i64 = self.get(column)?;
        Timestamp::from_microsecond(micros).map_err(|error| self.corrupt(format!("column {column}: {error}")))
    }

    /// A nullable unix-microseconds column.
    pub(super) fn optional_timestamp(&self, column: &str) -> Result<Option<Timestamp>> {
        let Some(micros) = self.get::<Option<i64>>(column)? else {
            return Ok(None);
        };
        Timestamp::from_microsecond(micros)
            .map(Some)
            .map_err(|error| self.corrupt(format!("column {column}: {error}")))
    }

    fn corrupt(&self, reason: String) -> SqlError {
        SqlError::Corrupt {
            table: self.table,
            key: self.key.clone(),
            reason,
        }
    }
}
