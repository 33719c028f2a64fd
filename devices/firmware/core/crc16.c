#include "crc16.h"

#ifdef __AVR__
#include <util/crc16.h>
#endif

uint16_t exo_crc16_update(uint16_t crc, uint8_t byte)
{
#ifdef __AVR__
    /* avr-libc's XMODEM update is the same polynomial, MSB first; only the init differs. */
    return _crc_xmodem_update(crc, byte);
#else
    uint8_t i;
    crc ^= (uint16_t)((uint16_t)byte << 8);
    for (i = 0; i < 8u; i++) {
        uint16_t shifted = (uint16_t)(crc << 1);
        crc = (crc & 0x8000u) ? (uint16_t)(shifted ^ 0x1021u) : shifted;
    }
    return crc;
#endif
}

uint16_t exo_crc16(const uint8_t *data, uint8_t len)
{
    uint16_t crc = EXO_CRC16_INIT;
    while (len--)
        crc = exo_crc16_update(crc, *data++);
    return crc;
}
