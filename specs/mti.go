package specs

import "fmt"

// MTIs the switch handles (ISO 8583:1987 version digit 0).
const (
	MTIAuthRequest       = "0100"
	MTIAuthResponse      = "0110"
	MTIFinancialRequest  = "0200"
	MTIFinancialResponse = "0210"
	MTIAdvice            = "0220"
	MTIAdviceResponse    = "0230"
	MTIReversal          = "0400"
	MTIReversalResponse  = "0410"
	MTIReversalAdvice    = "0420"
	MTIReversalRepeat    = "0421"
	MTIReversalAdviceRsp = "0430"
	MTIReconciliation    = "0500"
	MTIReconciliationRsp = "0510"
	MTINetworkMgmt       = "0800"
	MTINetworkMgmtRsp    = "0810"
)

// ValidMTI reports whether mti is four digits.
func ValidMTI(mti string) bool {
	if len(mti) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if mti[i] < '0' || mti[i] > '9' {
			return false
		}
	}
	return true
}

// IsRequest reports whether the MTI's message function (third digit) is a
// request, advice, notification or instruction that expects an answer:
// an even function digit.
func IsRequest(mti string) bool {
	return ValidMTI(mti) && (mti[2]-'0')%2 == 0
}

// ResponseMTI returns the response MTI for a request MTI: the message
// function digit plus one, with a repeat (last digit 1) answered as the
// original (0421 -> 0430).
func ResponseMTI(mti string) (string, error) {
	if !IsRequest(mti) {
		return "", fmt.Errorf("MTI %q is not a request", mti)
	}
	b := [4]byte{mti[0], mti[1], mti[2] + 1, '0'}
	if r, ok := responseMTIs[string(b[:])]; ok {
		return r, nil // the switch's own MTIs: no new string per answer
	}
	return string(b[:]), nil
}

// responseMTIs are the response MTIs the switch answers with, by value.
var responseMTIs = map[string]string{
	MTIAuthResponse: MTIAuthResponse, MTIFinancialResponse: MTIFinancialResponse,
	MTIAdviceResponse: MTIAdviceResponse, MTIReversalResponse: MTIReversalResponse,
	MTIReversalAdviceRsp: MTIReversalAdviceRsp, MTIReconciliationRsp: MTIReconciliationRsp,
	MTINetworkMgmtRsp: MTINetworkMgmtRsp,
}

// Transaction types: the first two digits of DE 3 (processing code).
const (
	ProcPurchase = "00"
	ProcRefund   = "20"
)
