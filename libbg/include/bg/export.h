/* bg/export.h: symbol visibility. libbg is built with hidden visibility; only what is marked
 * BG_EXPORT is part of its ABI. */
#ifndef BG_EXPORT_H
#define BG_EXPORT_H

#if defined(BG_BUILDING_LIBRARY) && defined(__GNUC__)
#define BG_EXPORT __attribute__((visibility("default")))
#else
#define BG_EXPORT
#endif

#endif
