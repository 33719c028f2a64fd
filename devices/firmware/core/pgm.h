/* Constant strings in program memory on AVR (they would otherwise be copied to RAM). */
#ifndef EXO_PGM_H
#define EXO_PGM_H

#ifdef __AVR__
#include <avr/pgmspace.h>
#define EXO_FLASH PROGMEM
#define EXO_PSTR(s) PSTR(s)
#define exo_flash_byte(p) pgm_read_byte(p)
#define exo_flash_ptr(p) ((const char *)pgm_read_word(p))
#else
#define EXO_FLASH
#define EXO_PSTR(s) (s)
#define exo_flash_byte(p) (*(const unsigned char *)(p))
#define exo_flash_ptr(p) (*(p))
#endif

#endif
