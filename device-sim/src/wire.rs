//! Line time on an RS-485 wire: how long RTU frames take at a baud rate.
//! Pseudo-terminals and TCP move bytes at once; a line served with
//! [`LineTiming::wire_baud`] holds each answer for the time the request and
//! the response would have taken on a real wire, so benchmarks of a
//! gateway's RTU scheduling see realistic numbers. Pure.

use std::time::Duration;

use tokio_modbus::{Request, Response};

/// Bits per character on an RTU line: start, 8 data, parity or a second
/// stop bit, stop (Modbus over serial line 2.5.1).
pub const BITS_PER_CHAR: u64 = 11;

/// RTU framing around a PDU: the slave address before it, the CRC after it.
const RTU_OVERHEAD: usize = 1 + 2;

/// An exception response: slave, function | 0x80, code, CRC.
pub const EXCEPTION_FRAME_LEN: usize = 5;

/// How an RTU line served by the simulator behaves in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineTiming {
    /// When set, each answer is held back by the wire time of its request
    /// and response at this baud rate (see [`rtu_wire_time`]); `None`
    /// answers as fast as the transport allows.
    pub wire_baud: Option<u32>,
}

fn packed_bits(count: usize) -> usize {
    count.div_ceil(8)
}

/// Bytes of `request` framed for RTU.
pub fn rtu_request_len(request: &Request<'_>) -> usize {
    let pdu = match request {
        Request::ReadCoils(..)
        | Request::ReadDiscreteInputs(..)
        | Request::ReadInputRegisters(..)
        | Request::ReadHoldingRegisters(..)
        | Request::WriteSingleCoil(..)
        | Request::WriteSingleRegister(..) => 5,
        Request::WriteMultipleCoils(_, coils) => 6 + packed_bits(coils.len()),
        Request::WriteMultipleRegisters(_, words) => 6 + 2 * words.len(),
        Request::ReportServerId => 1,
        Request::MaskWriteRegister(..) => 7,
        Request::ReadWriteMultipleRegisters(_, _, _, words) => 10 + 2 * words.len(),
        Request::ReadDeviceIdentification(..) => 4,
        Request::Custom(_, data) => 1 + data.len(),
    };
    pdu + RTU_OVERHEAD
}

/// Bytes of `response` framed for RTU.
pub fn rtu_response_len(response: &Response) -> usize {
    let pdu = match response {
        Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => {
            2 + packed_bits(bits.len())
        }
        Response::ReadInputRegisters(words)
        | Response::ReadHoldingRegisters(words)
        | Response::ReadWriteMultipleRegisters(words) => 2 + 2 * words.len(),
        Response::WriteSingleCoil(..)
        | Response::WriteMultipleCoils(..)
        | Response::WriteSingleRegister(..)
        | Response::WriteMultipleRegisters(..) => 5,
        Response::ReportServerId(_, _, data) => 4 + data.len(),
        Response::MaskWriteRegister(..) => 7,
        Response::ReadDeviceIdentification(identification) => {
            7 + identification
                .device_id_objects
                .iter()
                .map(|object| 2 + object.value.len())
                .sum::<usize>()
        }
        Response::Custom(_, data) => 1 + data.len(),
    };
    pdu + RTU_OVERHEAD
}

/// How long `bytes` characters take on the wire at `baud`; zero for a baud of 0.
pub fn bytes_wire_time(bytes: usize, baud: u32) -> Duration {
    let bits = u64::try_from(bytes).unwrap_or(u64::MAX) * BITS_PER_CHAR;
    bits.saturating_mul(1_000_000_000)
        .checked_div(u64::from(baud))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The wire time of `request` and its `response` as RTU frames at `baud`:
/// (request bytes + response bytes) × 11 / baud seconds; zero for a baud of 0.
/// A read of N holding registers is 8 + (5 + 2N) bytes.
pub fn rtu_wire_time(request: &Request<'_>, response: &Response, baud: u32) -> Duration {
    bytes_wire_time(rtu_request_len(request) + rtu_response_len(response), baud)
}

/// The wire time of `request` answered with an exception at `baud`.
pub fn rtu_exception_wire_time(request: &Request<'_>, baud: u32) -> Duration {
    bytes_wire_time(rtu_request_len(request) + EXCEPTION_FRAME_LEN, baud)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn reading_two_registers_at_9600_baud_takes_17_characters_of_line_time() {
        let time = rtu_wire_time(
            &Request::ReadHoldingRegisters(0, 2),
            &Response::ReadHoldingRegisters(vec![1, 2]),
            9600,
        );
        // (8 + 9) × 11 / 9600 s ≈ 19.48 ms.
        assert_eq!(time, Duration::from_nanos(17 * 11 * 1_000_000_000 / 9600));
        assert!((time.as_secs_f64() - 17.0 * 11.0 / 9600.0).abs() < 1e-9);
    }

    #[test]
    fn a_faster_line_takes_proportionally_less_time() {
        let request = Request::ReadInputRegisters(0, 8);
        let response = Response::ReadInputRegisters(vec![0; 8]);
        let slow = rtu_wire_time(&request, &response, 9600);
        let fast = rtu_wire_time(&request, &response, 19_200);
        assert_eq!(rtu_response_len(&response), 21);
        assert_eq!(slow, fast * 2);
    }

    #[test]
    fn frame_lengths_follow_the_rtu_layout() {
        assert_eq!(rtu_request_len(&Request::ReadHoldingRegisters(0, 125)), 8);
        assert_eq!(rtu_request_len(&Request::WriteSingleRegister(4, 0)), 8);
        let registers = Request::WriteMultipleRegisters(0, Cow::Owned(vec![1, 2, 3]));
        assert_eq!(rtu_request_len(&registers), 15);
        let coils = Request::WriteMultipleCoils(0, Cow::Owned(vec![true; 9]));
        assert_eq!(rtu_request_len(&coils), 11);
        assert_eq!(rtu_response_len(&Response::ReadCoils(vec![true; 9])), 7);
        assert_eq!(rtu_response_len(&Response::WriteSingleRegister(4, 0)), 8);
    }

    #[test]
    fn an_exception_answer_is_five_bytes_on_the_wire() {
        let request = Request::ReadHoldingRegisters(0, 1);
        assert_eq!(
            rtu_exception_wire_time(&request, 9600),
            bytes_wire_time(13, 9600)
        );
    }

    #[test]
    fn a_baud_of_zero_takes_no_time_instead_of_dividing_by_zero() {
        assert_eq!(bytes_wire_time(8, 0), Duration::ZERO);
    }
}
