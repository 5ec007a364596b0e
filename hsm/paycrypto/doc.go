// Package paycrypto implements payment cryptography primitives: ISO 9564-1 PIN blocks, TDES and AES DUKPT, the retail MAC, AES-CMAC and key check values.
package paycrypto
