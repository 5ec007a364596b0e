//go:build cgo

package pkcs11

/*
#include <stdlib.h>

// CK_KEY_DERIVATION_STRING_DATA as pkcs11t.h declares it.
typedef struct {
	unsigned char *pData;
	unsigned long ulLen;
} kbpay_derivation_string_data;
*/
import "C"

import (
	"encoding/binary"
	"unsafe"
)

// ulongSize is sizeof(CK_ULONG), which PKCS#11 defines as unsigned long.
const ulongSize = int(unsafe.Sizeof(C.ulong(0)))

// ulongs encodes a CK_ULONG array (CKA_ALLOWED_MECHANISMS) in the
// module's native layout.
func ulongs(v []uint) []byte {
	b := make([]byte, 0, ulongSize*len(v))
	for _, x := range v {
		if ulongSize == 4 {
			b = binary.NativeEndian.AppendUint32(b, uint32(x))
		} else {
			b = binary.NativeEndian.AppendUint64(b, uint64(x))
		}
	}
	return b
}

// derivationData is a CK_KEY_DERIVATION_STRING_DATA for the
// *_ECB_ENCRYPT_DATA derivations, with data copied to C memory
// (miekg/pkcs11 copies a []byte parameter as is, so the pointer inside
// must be C memory). free wipes and releases that copy.
func derivationData(data []byte) (param []byte, free func()) {
	p := C.CBytes(data)
	st := C.kbpay_derivation_string_data{pData: (*C.uchar)(p), ulLen: C.ulong(len(data))}
	param = C.GoBytes(unsafe.Pointer(&st), C.int(unsafe.Sizeof(st)))
	return param, func() {
		clear(unsafe.Slice((*byte)(p), len(data)))
		C.free(p)
	}
}
