//! TFRecord framing, the container of TensorBoard event files: each record is
//! `len: u64 LE | masked_crc(len bytes): u32 LE | data | masked_crc(data): u32 LE`, where
//! `masked_crc(b) = ((c >> 15) | (c << 17)) + 0xa282ead8` (wrapping) with `c` the CRC-32C
//! (Castagnoli) of `b`.

use std::io::Write;

/// The CRC-32C of `bytes`, masked as TFRecord stores it.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes one record holding `data`.
pub fn write(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc(data).to_le_bytes())
}

/// Every record's data in `bytes`, both checksums of each verified; an error says which
/// record (from 0) and at which byte it went wrong.
#[cfg_attr(not(test), allow(dead_code))]
pub fn read(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
    };
    while at < bytes.len() {
        let n = records.len();
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| format!("record {n} at byte {at}: truncated length"))?;
        if u32_at(at + 8) != Some(masked_crc(head)) {
            return Err(format!("record {n} at byte {at}: length checksum mismatch"));
        }
        let len = u64::from_le_bytes(head.try_into().map_err(|_| "length")?) as usize;
        let start = at + 12;
        let data = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| format!("record {n} at byte {at}: {len} bytes of data truncated"))?;
        if u32_at(start + len) != Some(masked_crc(data)) {
            return Err(format!("record {n} at byte {at}: data checksum mismatch"));
        }
        records.push(data);
        at = start + len + 4;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_mask_match_known_values() {
        // CRC-32C check value ("123456789" → 0xE3069283, RFC 3720 B.4); the masked value is
        // what TensorBoard's own `masked_crc32c(b"123456789")` returns.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn records_round_trip_and_corruption_is_caught() {
        let mut buf = Vec::new();
        write(&mut buf, b"first").unwrap();
        write(&mut buf, b"").unwrap();
        write(&mut buf, &[7u8; 300]).unwrap();
        let records = read(&buf).unwrap();
        assert_eq!(records, vec![&b"first"[..], &b""[..], &[7u8; 300][..]]);
        let mut bad = buf.clone();
        bad[13] ^= 1;
        assert!(read(&bad).unwrap_err().contains("record 0"));
        assert!(
            read(&buf[..buf.len() - 1])
                .unwrap_err()
                .contains("record 2")
        );
    }
}
