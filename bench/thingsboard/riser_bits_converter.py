"""Uplink converter for the ThingsBoard IoT Gateway Modbus connector: the stock
BytesModbusUplinkConverter, except that a "bits" key with a "bit" index on a
single holding/input register (FC 03/04, objectsCount 1) yields that bit.

Why: in thingsboard-gateway 3.8.5 decode_from_registers() cuts the decoded bit
list to objectsCount entries before applying "bit", so with objectsCount 1
every bit index returns the same bit (bit 8 of the register), and
objectsCount 16 makes it read 16 registers, past the end of our devices'
tables. Upstream: https://github.com/thingsboard/thingsboard-gateway/issues/2101

Install: copy this file to <site-packages>/thingsboard_gateway/extensions/modbus/
(setup.sh does); a slave selects it with "uplink_converter": "RiserBitsUplinkConverter".
"""

from thingsboard_gateway.connectors.modbus.bytes_modbus_uplink_converter import BytesModbusUplinkConverter


class RiserBitsUplinkConverter(BytesModbusUplinkConverter):
    def decode_data(self, encoded_data, config, endian_order, word_endian_order):
        if (config.get('bit') is not None
                and config.get('functionCode') in (3, 4)
                and str(config.get('type', '')).lower() in ('bit', 'bits')
                and encoded_data):
            on = (int(encoded_data[0]) >> int(config['bit'])) & 1
            return bool(on) if config.get('bitTargetType', 'bool') == 'bool' else on
        return super().decode_data(encoded_data, config, endian_order, word_endian_order)
