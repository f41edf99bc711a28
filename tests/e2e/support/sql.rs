//! Reads destination tables back.

use sha2::{Digest, Sha256};

/// Row count and an order-independent checksum of the chosen columns of a
/// table (each row's text form hashed, the hashes sorted and hashed again).
pub async fn table_digest(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &str,
) -> (u64, String) {
    let rows = client
        .query(
            &format!("SELECT concat_ws('|', {columns}) FROM public.{table}"),
            &[],
        )
        .await
        .expect("read table");
    let mut hashes: Vec<String> = rows
        .iter()
        .map(|r| {
            let text: String = r.get(0);
            hex::encode(Sha256::digest(text.as_bytes()))
        })
        .collect();
    hashes.sort();
    let total = hex::encode(Sha256::digest(hashes.join("\n").as_bytes()));
    (rows.len() as u64, total)
}

/// Expected digest computed the same way from rows given as column texts.
pub fn expected_digest(rows: impl IntoIterator<Item = Vec<String>>) -> (u64, String) {
    let mut hashes: Vec<String> = rows
        .into_iter()
        .map(|r| hex::encode(Sha256::digest(r.join("|").as_bytes())))
        .collect();
    hashes.sort();
    let n = hashes.len() as u64;
    (n, hex::encode(Sha256::digest(hashes.join("\n").as_bytes())))
}
