/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0): check 0x29B1. */
#ifndef EXO_CRC16_H
#define EXO_CRC16_H

#include <stdint.h>

#define EXO_CRC16_INIT 0xFFFFu

uint16_t exo_crc16_update(uint16_t crc, uint8_t byte);
uint16_t exo_crc16(const uint8_t *data, uint8_t len);

#endif
