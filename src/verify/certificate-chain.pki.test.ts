import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyCertificateChain } from "./certificate-chain.ts";

// A private PKI made once with the openssl CLI (EC P-256, valid 2026-12-07 to 2126, the short
// intermediate to 2036), embedded so the test needs no tools. Each certificate isolates one rule of
// verifyCertificateChain: a forged issuer with the right name, EKU/key-usage limits, CA and
// path-length constraints, validity, the depth limit, and the identity read from the leaf.
// "leaf" has SAN email:signer@example.com + URI:https://example.com/ci, EKU codeSigning, KU
// digitalSignature, Fulcio issuer OIDs .1.8 (UTF8String "https://issuer.example") and .1.1 (raw
// "https://v1.example"). "forged" has the subject of "inter" (CN=Test Intermediate) but its own key.
const B64: Record<string, string> = {
  forged:
    "MIIBizCCATGgAwIBAgIIEqKaUfqsVGYwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJVGVzdCBSb290MCAXDTI2MTIwNzAwMzY0OFoYDzIxMjYxMTEzMDAzNjQ4WjAcMRowGAYDVQQDDBFUZXN0IEludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEwUSCTgrwGwXEXFTCnG1XjK+0lBbk4ckrATSzMM123IzJgStxwiVEtOtOLUbeXX+tSaEo0NNLgpdfcYo063fJ+jYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSFVRBNtK+0MX1WDK+x3xrcyEva+DAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNIADBFAiEA/iodtkVzBlL7Dz5quPnxf2UW10IYx07yivh9oS8p3jMCIG7O4iYq+z7XHv8YEc+yIClA8RyopKWkNMA+szOvEjQD",
  i1: "MIIBgzCCASigAwIBAgIJAIrW7y9PKZJ0MAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCVRlc3QgUm9vdDAgFw0yNjEyMDcwMDM2NTBaGA8yMTI2MTExMzAwMzY1MFowEjEQMA4GA1UEAwwHQ2hhaW4gMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFdMlGkvkzV3Y+bYACP8EVv32r02tor0m4DWeBLAOM5wk6q8l/UsdyxOYk4fnn+xjBNU/eWR4aW0kzSeqfg/JBWjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBT5u/IA5f79rZLEe1qvXgyQFlJyXjAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNJADBGAiEAoJcmMeSB2ImEOR7tqbKHfmUzsnT612WpWgxzxTe+Hu8CIQDuTwQ2bw2hLZUbDSmxpSvjC8ovrBvThvgmhg6h/7LqYg==",
  i2: "MIIBfzCCASagAwIBAgIJAKd6N4Zdxj3RMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB0NoYWluIDEwIBcNMjYxMjA3MDAzNjUxWhgPMjEyNjExMTMwMDM2NTFaMBIxEDAOBgNVBAMMB0NoYWluIDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAReOoNk+3yHn1wZKcD5RAbrXDiQYy7gImRwA/+YZ0ZTdMUsibmDWPfq/DcXLIJDyiqSkQpn4mCofUoUyjcb3x5Uo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUAMZ8JH0rlTW3Fot4iByohJFI/88wHwYDVR0jBBgwFoAU+bvyAOX+/a2SxHtar14MkBZScl4wCgYIKoZIzj0EAwIDRwAwRAIgVG3Zv6KMBnrt/SmJmFL2LpqGwzV0T9WQQbx0tMrv2UkCIHEphTJArK3YXL4vikb+u5+LhwkvdPeVe4hejJXaoI4s",
  i3: "MIIBfjCCASWgAwIBAgIIXZJ8yT8w19MwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHQ2hhaW4gMjAgFw0yNjEyMDcwMDM2NTFaGA8yMTI2MTExMzAwMzY1MVowEjEQMA4GA1UEAwwHQ2hhaW4gMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN1MLtymIvE/XyagAZUvrI8dfyJ7+QUTKHz2EcvN7UGI6kORHtdxpH74eAvZzdZA9aqj9OQFvsLNWeibKTeQLhyjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSawQSMSaAf5qMconSVbwZTsZu0oDAfBgNVHSMEGDAWgBQAxnwkfSuVNbcWi3iIHKiEkUj/zzAKBggqhkjOPQQDAgNHADBEAiB5y7I5DfUIvgSbMSnVJRuljgS5BJXBNukcZqdRESlVsQIgHwXQK6aIYqTlCh9EN006ST+HyjRRm2tLEu7Wg5Uod9w=",
  i4: "MIIBfzCCASWgAwIBAgIIOsh20lfG7/QwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHQ2hhaW4gMzAgFw0yNjEyMDcwMDM2NTFaGA8yMTI2MTExMzAwMzY1MVowEjEQMA4GA1UEAwwHQ2hhaW4gNDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIxRvYB8ckX3K1EVgJSWdSsMU6LaDn+J5FNUv9EGiZxXqlBWnPOWQVj4YH5VCFooSMl6MQZ1s48MJ7JSQtPJo1GjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSPZiSRmbW1FruFMBE2fn1nIXmBpTAfBgNVHSMEGDAWgBSawQSMSaAf5qMconSVbwZTsZu0oDAKBggqhkjOPQQDAgNIADBFAiAONmeeRpKef/6ZaDXNPoYK6Lk4XtESAvDB3pUKyCy6qgIhAKaf9rc+9mCFVVuTgTbkt/86Wh5e9o7xlxdsKYFJTtx3",
  i5: "MIIBgDCCASagAwIBAgIJAKa5kAlGL3OPMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB0NoYWluIDQwIBcNMjYxMjA3MDAzNjUxWhgPMjEyNjExMTMwMDM2NTFaMBIxEDAOBgNVBAMMB0NoYWluIDUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT6S4/SddXZfVg0eJgTOjBR1ffOjxP2DgxKstTOqk4QJ9/O1Q5cu4zV0Vx0cgUiRfYe1TcYGotUZ5LsiHyNaJKEo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUjsfZF0WTfSciEiqwatuZuudIRUcwHwYDVR0jBBgwFoAUj2YkkZm1tRa7hTARNn59ZyF5gaUwCgYIKoZIzj0EAwIDSAAwRQIhAJ6tgGjEtWRrskKF/LmMx4acwtkE+5iJADdIJe5U/0r0AiAzHaYCvqZqYxPsZoBgfziOgI3Gk11OCEpca+pANTTKIg==",
  i6: "MIIBfzCCASagAwIBAgIJANicyqE0z/jxMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB0NoYWluIDUwIBcNMjYxMjA3MDAzNjUxWhgPMjEyNjExMTMwMDM2NTFaMBIxEDAOBgNVBAMMB0NoYWluIDYwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASzS5minEZjZXRKHuSV1CExj4z/2uVoktdB5liXF9TExh5n/YnC3DnudbHnLOQ1z8dGxXowI+SHO7Hv4TwmHy4Fo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUOVjEVcbb+gIdwcLv3a1ACQk0BQ8wHwYDVR0jBBgwFoAUjsfZF0WTfSciEiqwatuZuudIRUcwCgYIKoZIzj0EAwIDRwAwRAIgS4T2jpcNeFaGFI+Lgk/wYhrD4m4C5IStJ80RVmwdPFMCIAtopKDbaDr70pmHGMOsN/9S/2mfzfeKio8B/J0xI22i",
  i7: "MIIBgDCCASagAwIBAgIJAJksIqE4Qr/HMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB0NoYWluIDYwIBcNMjYxMjA3MDAzNjUxWhgPMjEyNjExMTMwMDM2NTFaMBIxEDAOBgNVBAMMB0NoYWluIDcwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASb9h2j7saD4Y7oc4xGpRl/+cCzzFj74MEPgtFsJojLANZ2bMYkPChtB3IoHSNLCFveuWixxNQ6yjTN9eqc0ZMdo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUVBduuCk4n4P1RngpMm/Os4VTx3IwHwYDVR0jBBgwFoAUOVjEVcbb+gIdwcLv3a1ACQk0BQ8wCgYIKoZIzj0EAwIDSAAwRQIhANMb46bsSPKPPpXyPb3P1THCvmHiWrTzyjPA8e6vY6P8AiA/uy0YhShObt3ywFkZNQj4p8RmcavTFmTI0kAUdDq0ng==",
  inter:
    "MIIBjDCCATGgAwIBAgIIByAOxbH/UpAwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJVGVzdCBSb290MCAXDTI2MTIwNzAwMzY0OFoYDzIxMjYxMTEzMDAzNjQ4WjAcMRowGAYDVQQDDBFUZXN0IEludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN5xw7HKxDaK580+YlaJwC597yKhThyoZhVhr+cCCYDzjyfvaEcoRvjVuD2lHWxdIv3VhNEBZQ6X5CPBAKoy+Q6jYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSyiTjSMyL4mEZ8zdRPUblpI0kWSjAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNJADBGAiEAz/gLe1pdxFB97fRxrvEmwNA1LTrcnZoCJnBSdRhRhzgCIQDEvqehYxsHpEpjho/E3f104yJes0GxwgyAvy53sGQ5Gw==",
  interNotCA:
    "MIIBgDCCASWgAwIBAgIIMmVdCt1KHecwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJVGVzdCBSb290MCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjATMREwDwYDVQQDDAhOb3QgQSBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABK6wG5XCj/0a7uI9wU6M+EzGG3GG8mBJbfi1VbIfQdLW4NOB0lwLkfX6CK955qrA2SWarlqbw0PoDVa9Dvpzhr+jYDBeMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgKEMB0GA1UdDgQWBBSj/PiMtCPu4v+7Zz9mL67ZGjFAqzAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNJADBGAiEAnnPyPGh/CwjrTxNM3E5lNTpc/FKzEcLF6uc/wYg9yp4CIQDmPidMtG2LyKBUQ1oe9/t0E2G9eMoQv2iFfRPLRameVQ==",
  interPL0:
    "MIIBjzCCATSgAwIBAgIJAOwegRgkuUZuMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCVRlc3QgUm9vdDAgFw0yNjEyMDcwMDM2NDlaGA8yMTI2MTExMzAwMzY0OVowGzEZMBcGA1UEAwwQSW50ZXJtZWRpYXRlIFBMMDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEDTPWA9e4LiSQ5Pm2YgzK0hzD7wKIrpRo2SZWboKlXpDH8LA4wNDAvHD6cPdB42Iw6GhypVuLUnex9OpR8sfy6jZjBkMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgIEMB0GA1UdDgQWBBQ2NRRUbbNFYbSBKp8TiMXU7qiYETAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNJADBGAiEAimlMuiuqiA3kZEM87/BEwRHkzj6zRVT7F8GEsp+ySxoCIQDF2mkq9tIGjTIx1kiE5EicOZCkPVOrU7lgW9i6SlKsLA==",
  interR0:
    "MIIBjjCCATSgAwIBAgIJAPxOAy3BUyAeMAoGCCqGSM49BAMCMBgxFjAUBgNVBAMMDVRlc3QgUm9vdCBQTDAwIBcNMjYxMjA3MDAzNjUwWhgPMjEyNjExMTMwMDM2NTBaMBoxGDAWBgNVBAMMD0ludGVybWVkaWF0ZSBSMDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABArmstKUPmXxPhZd8lS4rBGDebhg/g6lNTcHWm7+xt3c3dJ/G6yeZEvoB5V8LgHPRd621/qc1bAGkNL0jxItE+GjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBQZOaxSPXg8YlUz7ycz14h86tUpVTAfBgNVHSMEGDAWgBQ2D9GaIxsCH9cO7tB/TostjeQJuTAKBggqhkjOPQQDAgNIADBFAiBg38yg9I3NV+SLwPcsrNJ9lvdUrNaZdsvPym+T/L+dmQIhANpzboBEhcBIUEkb1uDqK2eTORm/eFKlmAvxk5o1Ggo7",
  interR1:
    "MIIBjzCCATSgAwIBAgIJAJ0AwbmsUUnDMAoGCCqGSM49BAMCMBgxFjAUBgNVBAMMDVRlc3QgUm9vdCBQTDEwIBcNMjYxMjA3MDAzNjUwWhgPMjEyNjExMTMwMDM2NTBaMBoxGDAWBgNVBAMMD0ludGVybWVkaWF0ZSBSMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDr1Nq5FeOPWyJ3v8M7WuVxKUfTVgBoTzgwfhBZC80bm4JBwv8CAxphzQUfAGBGx9w3tPpf64Ppzu8b0FJVp61OjYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBS/YnKBSukRV9z05I6Qu4MJtdYPKzAfBgNVHSMEGDAWgBSmuqBw9fmseUAvy6j+s/pzUj7xZzAKBggqhkjOPQQDAgNJADBGAiEAy5o/12kQ4R8m5lQE3dqIfZbZEK381EX1PmFRjCXhzRECIQCQy1i4ltH1BqCJTJOX3pQJ1VSrEw/jGQliQrivc5UJhg==",
  interServer:
    "MIIBozCCAUmgAwIBAgIJANDg7EgJJ595MAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCVRlc3QgUm9vdDAgFw0yNjEyMDcwMDM2NDlaGA8yMTI2MTExMzAwMzY0OVowHjEcMBoGA1UEAwwTU2VydmVyIEludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDbd8UwTTq1dfFf3gS/EZ092w2k9U1qByKtqpotaYPMWFUT1qZ5yJiy0ZxoAVaFILjpnoI+7G3vXpwip9r7ES4+jeDB2MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBRJFt3GPVAOFcsI2Wr/ZMrBwqJw8DAfBgNVHSMEGDAWgBQO5Tj22/WYwRFDoJdsS55W0sMk0zAKBggqhkjOPQQDAgNIADBFAiEA0x0mxsYhV+A+Nni4L57s0kpM7pw0Gkviwe13HiCqDBUCIDGHxZCytc5bXAHhawi+ow7+YjakzJMXvzWLJGZ/7qEY",
  interShort:
    "MIIBijCCATCgAwIBAgIIARlwwuEALzcwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJVGVzdCBSb290MB4XDTI2MTIwNzAwMzY1MFoXDTM2MTIwNDAwMzY1MFowHTEbMBkGA1UEAwwSU2hvcnQgSW50ZXJtZWRpYXRlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqO5oxOcX/iOgOy69kqfHtFOgQzTO3QYOzlhB+oXVjHO0haStcFERcO/OZMbq0RNY3IwTr9epSssHuf+L2rTfDqNjMGEwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFIOorPnzdcqRgQ8XS9SfcA4HdLcJMB8GA1UdIwQYMBaAFA7lOPbb9ZjBEUOgl2xLnlbSwyTTMAoGCCqGSM49BAMCA0gAMEUCIQCtaSTmBr0YqK5rCOPf1FdB3mH+dgmgi7N6FcceMpnUxAIgVbGskzQAmX4C7nsKdjaAMDy1qj/Ai30fhu9se2Bb8Ms=",
  interUnderPL0:
    "MIIBmDCCAT6gAwIBAgIJAMYawVsF88QrMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEEludGVybWVkaWF0ZSBQTDAwIBcNMjYxMjA3MDAzNjUwWhgPMjEyNjExMTMwMDM2NTBaMCExHzAdBgNVBAMMFkludGVybWVkaWF0ZSB1bmRlciBQTDAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATpUTdKoVtD9zPBjDUv8ngt4OUfPrAhZTyk1xstVNpHASX/ZBN9GPDqb04kHiFD1autkuTqa5TUXokXAkvZJuNXo2MwYTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUx1psrkrLk8jamb7tiLUOk1OamSwwHwYDVR0jBBgwFoAUNjUUVG2zRWG0gSqfE4jF1O6omBEwCgYIKoZIzj0EAwIDSAAwRQIgXIGdd9dzl+bd3xO+0SsJdqFTI6qKqDmLoHZOsKDHJCwCIQDoGgTtLLXmhAqQcBcbdOO5mDFslLYPQxNB4qaz2dZxKQ==",
  leaf: "MIICGzCCAcKgAwIBAgIJAPTcvPnu+qjjMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEVRlc3QgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY0OFoYDzIxMjYxMTEzMDAzNjQ4WjAPMQ0wCwYDVQQDDARsZWFmMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEn+ZUPZppSQ0c11t8STsYDeApGMm1XhpPKvibxme5+kRTdcWtGSGwVwV3LIltroyhBDdR9ayQwmCCBq7/REzEFaOB9zCB9DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAzA1BgNVHREELjAsgRJzaWduZXJAZXhhbXBsZS5jb22GFmh0dHBzOi8vZXhhbXBsZS5jb20vY2kwJgYKKwYBBAGDvzABCAQYDBZodHRwczovL2lzc3Vlci5leGFtcGxlMCAGCisGAQQBg78wAQEEEmh0dHBzOi8vdjEuZXhhbXBsZTAdBgNVHQ4EFgQUTXuqMXzhB8qQl+/55GenucIWQlcwHwYDVR0jBBgwFoAUsok40jMi+JhGfM3UT1G5aSNJFkowCgYIKoZIzj0EAwIDRwAwRAIgVI6FlUyvLCYaYwGoKqzd6tQbzdh19RDHWp8sXZqiyhcCIF3BSmLNDt04jOjgx+7czq1AifCt5TID+P/QKlHVpepP",
  leaf6:
    "MIICFDCCAbqgAwIBAgIJAOFdZMwZlCWLMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB0NoYWluIDYwIBcNMjYxMjA3MDAzNjUxWhgPMjEyNjExMTMwMDM2NTFaMBExDzANBgNVBAMMBmxlYWYgNjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOB5a98+HatBnp/4PKU8bDVIDCNDmJibCtOy6mz7Dw1vRyFkBHAvXLKvYcIbJqWAe/Ml3QZKgfQVD+aEowpuI8OjgfcwgfQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwMwNQYDVR0RBC4wLIESc2lnbmVyQGV4YW1wbGUuY29thhZodHRwczovL2V4YW1wbGUuY29tL2NpMCYGCisGAQQBg78wAQgEGAwWaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFPFy9DvZu1TYvvk6/5urlSYPI6DYMB8GA1UdIwQYMBaAFDlYxFXG2/oCHcHC792tQAkJNAUPMAoGCCqGSM49BAMCA0gAMEUCIF0JdxO5gAbuCGATYZ6Ecl9hOxXBMt4rO0d5HebvLYKXAiEAsnkGZppQEFL0pI/smz78bx36m4d0Fa13QyIyjBEL0H4=",
  leaf7:
    "MIICEzCCAbmgAwIBAgIId6oMlkkytK0wCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHQ2hhaW4gNzAgFw0yNjEyMDcwMDM2NTFaGA8yMTI2MTExMzAwMzY1MVowETEPMA0GA1UEAwwGbGVhZiA3MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE31gyq6VJoU+fFEI7ozaQP6TxuywSzzzBF/RJUbX5GgnFdLkhuoqtUa4/FTOCH/1AdnyHwEM2VrLaZ94duLCXS6OB9zCB9DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAzA1BgNVHREELjAsgRJzaWduZXJAZXhhbXBsZS5jb22GFmh0dHBzOi8vZXhhbXBsZS5jb20vY2kwJgYKKwYBBAGDvzABCAQYDBZodHRwczovL2lzc3Vlci5leGFtcGxlMCAGCisGAQQBg78wAQEEEmh0dHBzOi8vdjEuZXhhbXBsZTAdBgNVHQ4EFgQUHR0NCWfcmiMp/3dSu9ZjZXZmn44wHwYDVR0jBBgwFoAUVBduuCk4n4P1RngpMm/Os4VTx3IwCgYIKoZIzj0EAwIDSAAwRQIgXq9F9WBrGuQj3vvP0og+TZVS25hjDb5ipINhjSmRK7ICIQC8xB/Win3WCofGnQ/xy95hTnrDh7rdhJF4vtKIx2tvcw==",
  leafAny:
    "MIIBxDCCAWqgAwIBAgIJAO9HtoqanHtSMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEVRlc3QgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjATMREwDwYDVQQDDAhsZWFmIGFueTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCTg7MtKtkh4acIVnduP92o60OD7nja+rV9M6/gv50LBndwX2YnOdozQv1efE8t8zPgKj6XqPewsaj/mOcX5KxyjgZswgZgwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwDwYDVR0lBAgwBgYEVR0lADAnBgNVHREEIDAegQ1hQGV4YW1wbGUuY29tgQ1iQGV4YW1wbGUuY29tMB0GA1UdDgQWBBScHRye7g29UbsDUCdD9p4PPP9ZtDAfBgNVHSMEGDAWgBSyiTjSMyL4mEZ8zdRPUblpI0kWSjAKBggqhkjOPQQDAgNIADBFAiEAvTdE7xcd1FqZs3sqp5Coa4HEw7uKtBpXYlnsO3YxuvcCICM51kZws9uDUWXcKHalfoCOn8cUB5xaf2rsSqYt6CN2",
  leafDeep:
    "MIICJTCCAcygAwIBAgIJAJ7NHhuVkRjOMAoGCCqGSM49BAMCMCExHzAdBgNVBAMMFkludGVybWVkaWF0ZSB1bmRlciBQTDAwIBcNMjYxMjA3MDAzNjUwWhgPMjEyNjExMTMwMDM2NTBaMBQxEjAQBgNVBAMMCWxlYWYgZGVlcDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAJhx2bYVjss81XTu7vMvJTZzzksNPJDNntoYKbbh36TOnGK+03uL7IO6XexjFU5G1uKsLWkd01bthJXepc5WMujgfcwgfQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwMwNQYDVR0RBC4wLIESc2lnbmVyQGV4YW1wbGUuY29thhZodHRwczovL2V4YW1wbGUuY29tL2NpMCYGCisGAQQBg78wAQgEGAwWaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFI8Qsd4/tOyAGuRSjbXk54eODmRIMB8GA1UdIwQYMBaAFMdabK5Ky5PI2pm+7Yi1DpNTmpksMAoGCCqGSM49BAMCA0cAMEQCIAtKu/Q4aBFcADsXJnizSfZlBOKwsLvWtru2w/GCzmrhAiBWGi0tMEyHAQtKzV/oq4N45EQgOuY2VTHUdf0uOoeOcA==",
  leafKeyEnc:
    "MIIBoDCCAUagAwIBAgIJAO05SmKxKYQbMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEVRlc3QgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjAWMRQwEgYDVQQDDAtsZWFmIGtleWVuYzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIFW+iRX+4R1IomYnQjaglM9GF48gcPlkh5SqOjup/gkK7WrBS0F84DiR1Q7at5g2aJutNM64h4KeZ+Nr//NcFyjdTBzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgMIMBMGA1UdJQQMMAoGCCsGAQUFBwMDMB0GA1UdDgQWBBQXAayhPYNBx47MH5RYtZ/oqyQFozAfBgNVHSMEGDAWgBSyiTjSMyL4mEZ8zdRPUblpI0kWSjAKBggqhkjOPQQDAgNIADBFAiEA8MFRbSz/Th0otw3L1T6iFjTPO4qVGBT8cmJmnmz0ZPcCIEPwQgwmRWnC6u/cMw3dBSx2o0tdl00liIRx3gyTg7dk",
  leafPlain:
    "MIIBtzCCAV2gAwIBAgIJAJPcyZR50JuoMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEVRlc3QgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjAVMRMwEQYDVQQDDApsZWFmIHBsYWluMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEm2bx4lvbzNs3hWK4WuTEini7d2PhKXEyxonRmLoa58J+fSCbAAacjn/2DaIh9iNQ1gYMnGg9IjHDfb7o6asLdKOBjDCBiTAMBgNVHRMBAf8EAjAAMBcGA1UdEQQQMA6GDHNwaWZmZTovL3gveTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFJ8Y9rSHGUy0n6aNE/r3btBqCY2DMB8GA1UdIwQYMBaAFLKJONIzIviYRnzN1E9RuWkjSRZKMAoGCCqGSM49BAMCA0gAMEUCIF5WEAjc6cStYJatSJmg3iuEEtcjbM1d2sFxXClbV2i7AiEAuqNk9QsR5N/pELaj63PvEtiUhpgm7g0Js0As/KFec0c=",
  leafR0:
    "MIICHTCCAcOgAwIBAgIJAIa0fkYNT8CiMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMMD0ludGVybWVkaWF0ZSBSMDAgFw0yNjEyMDcwMDM2NTBaGA8yMTI2MTExMzAwMzY1MFowEjEQMA4GA1UEAwwHbGVhZiByMDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOObCpSlJrQ7/x2QjgQKgUFoLWJTQz9+idSfIcHkP+1uZoGJz/PB1rpIaKtyLL4T0kBCoTAB4uKJg2gy9ZrY3PujgfcwgfQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwMwNQYDVR0RBC4wLIESc2lnbmVyQGV4YW1wbGUuY29thhZodHRwczovL2V4YW1wbGUuY29tL2NpMCYGCisGAQQBg78wAQgEGAwWaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFOGIZpJyo4mA73uCkiZzX1EiK7QaMB8GA1UdIwQYMBaAFBk5rFI9eDxiVTPvJzPXiHzq1SlVMAoGCCqGSM49BAMCA0gAMEUCIGi8WUwpPNseQq8RDnZOk5tjCBznLMIe8iXCmnwzRM9wAiEAhgdkKrrgo1NnKuWmRmjjlGATKBlRUffeUn7LQHTBI7I=",
  leafR1:
    "MIICHTCCAcOgAwIBAgIJALjMj0jMmSLGMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMMD0ludGVybWVkaWF0ZSBSMTAgFw0yNjEyMDcwMDM2NTBaGA8yMTI2MTExMzAwMzY1MFowEjEQMA4GA1UEAwwHbGVhZiByMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOByEnD87ml3fPPKGPpzso4D8c8tpucqWKgyyHVC2ZOQ9gee1zlZwenTJGmd73nWs5uHeUiQqIZYl/XVYUCtSp2jgfcwgfQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwMwNQYDVR0RBC4wLIESc2lnbmVyQGV4YW1wbGUuY29thhZodHRwczovL2V4YW1wbGUuY29tL2NpMCYGCisGAQQBg78wAQgEGAwWaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFJpdq8xbppyv3cZw6KaS/4QG46hmMB8GA1UdIwQYMBaAFL9icoFK6RFX3PTkjpC7gwm11g8rMAoGCCqGSM49BAMCA0gAMEUCIBH/bcnuF+A4vJgJ3yghhc7+WjxdhM+eHSxei2D4znInAiEAhXMfXk3Q9Wg69s484Mk3H7vK3sz5Ht8HWk2T4fRa1fo=",
  leafServer:
    "MIIBoDCCAUagAwIBAgIJAIaOddzKoG/yMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEVRlc3QgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjAWMRQwEgYDVQQDDAtsZWFmIHNlcnZlcjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNgSJw524H+ELonjZ05p0VnujqhI0p28+5GRyi0BSZyDosIHha0SjDI/hnSdr3svt8lhyeoRccVYcntN7D6IrI6jdTBzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBSx7xBjAbP7+z8TtoY1nfaoxdoXwDAfBgNVHSMEGDAWgBSyiTjSMyL4mEZ8zdRPUblpI0kWSjAKBggqhkjOPQQDAgNIADBFAiAQDkyQni8/0TvHhPqPKhVVWxQ32/2LZHqS42nqVlTlogIhALS+fi3KQs5L4a6oTql4CS9rq4ESE3DBryEwsJ/Pdoe8",
  leafUnderNotCA:
    "MIICIDCCAcagAwIBAgIJANcwDcwRdKCuMAoGCCqGSM49BAMCMBMxETAPBgNVBAMMCE5vdCBBIENBMCAXDTI2MTIwNzAwMzY0OVoYDzIxMjYxMTEzMDAzNjQ5WjAcMRowGAYDVQQDDBFsZWFmIHVuZGVyIG5vdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLs2bkD1FfMl5hJiXzkAq1Wwz2JwbPVFZnPs97zGgEXLtYc5jzX/J0va81UZNKErxWLs5IKH5ZRjZQwjr0sc6K2jgfcwgfQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwMwNQYDVR0RBC4wLIESc2lnbmVyQGV4YW1wbGUuY29thhZodHRwczovL2V4YW1wbGUuY29tL2NpMCYGCisGAQQBg78wAQgEGAwWaHR0cHM6Ly9pc3N1ZXIuZXhhbXBsZTAgBgorBgEEAYO/MAEBBBJodHRwczovL3YxLmV4YW1wbGUwHQYDVR0OBBYEFEx2U35WLtxSQaFJ/ZtqWKqiFH+UMB8GA1UdIwQYMBaAFKP8+Iy0I+7i/7tnP2YvrtkaMUCrMAoGCCqGSM49BAMCA0gAMEUCIGvzXjH6Tal/KFDo6ZgCKw2qu4vf+vE4eceafZWUS2R8AiEA8eX8EXjZUK16r0SR3hmz36utFgWDKO7AIHwWHfXrseI=",
  leafUnderPL0:
    "MIICJjCCAcugAwIBAgIJAMuIN86iwZmWMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEEludGVybWVkaWF0ZSBQTDAwIBcNMjYxMjA3MDAzNjUwWhgPMjEyNjExMTMwMDM2NTBaMBkxFzAVBgNVBAMMDmxlYWYgdW5kZXIgcGwwMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETnnCzVr987IOTIle2RKwqTVij3JaGzNR0yPDOTeestrLnJYs9reXdV17t4HUKsldkK/Ji/MWDDBtYGowp3+GeaOB9zCB9DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAzA1BgNVHREELjAsgRJzaWduZXJAZXhhbXBsZS5jb22GFmh0dHBzOi8vZXhhbXBsZS5jb20vY2kwJgYKKwYBBAGDvzABCAQYDBZodHRwczovL2lzc3Vlci5leGFtcGxlMCAGCisGAQQBg78wAQEEEmh0dHBzOi8vdjEuZXhhbXBsZTAdBgNVHQ4EFgQU53LpbbLz3oOJaJ2Btuj6B5NtlOUwHwYDVR0jBBgwFoAUNjUUVG2zRWG0gSqfE4jF1O6omBEwCgYIKoZIzj0EAwIDSQAwRgIhAO8e0YOicyWWxSLSgkVYg0CCNQFjGX9RoEQYnbQVs7TBAiEA+3sRr1LlfVBbef1chFYGh7XbgPjbLeXwEzlKi8UPrB4=",
  leafUnderServer:
    "MIICKjCCAdCgAwIBAgIIMc4wjnHWzvowCgYIKoZIzj0EAwIwHjEcMBoGA1UEAwwTU2VydmVyIEludGVybWVkaWF0ZTAgFw0yNjEyMDcwMDM2NDlaGA8yMTI2MTExMzAwMzY0OVowHDEaMBgGA1UEAwwRbGVhZiB1bmRlciBzZXJ2ZXIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATnDIk0s3w08HlbKtuEv+gIKjWdQ84VFtrQiBpAFLw3nr4WcD9RAxCP/2JySeaML57fbBV/QG2tJ4EBIGLdLUu7o4H3MIH0MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMDMDUGA1UdEQQuMCyBEnNpZ25lckBleGFtcGxlLmNvbYYWaHR0cHM6Ly9leGFtcGxlLmNvbS9jaTAmBgorBgEEAYO/MAEIBBgMFmh0dHBzOi8vaXNzdWVyLmV4YW1wbGUwIAYKKwYBBAGDvzABAQQSaHR0cHM6Ly92MS5leGFtcGxlMB0GA1UdDgQWBBRkaXzUMjemBeOYtd/neIFLNGGcmzAfBgNVHSMEGDAWgBRJFt3GPVAOFcsI2Wr/ZMrBwqJw8DAKBggqhkjOPQQDAgNIADBFAiEA8gMUhC52UzfmrAhCYMZ4BI92iRyN5mXwcyNrANzYuUQCIBgm7ECAmSgXYKPw9M5MecOdrfxSthcnsWYVw2vFX3Nc",
  leafUnderShort:
    "MIICKTCCAc6gAwIBAgIIAiXQ/nmqskowCgYIKoZIzj0EAwIwHTEbMBkGA1UEAwwSU2hvcnQgSW50ZXJtZWRpYXRlMCAXDTI2MTIwNzAwMzY1MFoYDzIxMjYxMTEzMDAzNjUwWjAbMRkwFwYDVQQDDBBsZWFmIHVuZGVyIHNob3J0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEViD1qYwVttfD2blgMmj3a6pQufkeaENolPlsyQSTRpmDRK6R041JDzrAR8z0EdIcaWxT2g/7ZgMoCIbD9ayqDKOB9zCB9DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAzA1BgNVHREELjAsgRJzaWduZXJAZXhhbXBsZS5jb22GFmh0dHBzOi8vZXhhbXBsZS5jb20vY2kwJgYKKwYBBAGDvzABCAQYDBZodHRwczovL2lzc3Vlci5leGFtcGxlMCAGCisGAQQBg78wAQEEEmh0dHBzOi8vdjEuZXhhbXBsZTAdBgNVHQ4EFgQUHEwufDYEOMXshFYnTeBaXXISR1UwHwYDVR0jBBgwFoAUg6is+fN1ypGBDxdL1J9wDgd0twkwCgYIKoZIzj0EAwIDSQAwRgIhAL/uoNMkofXJaUNz3QxEkCTbiRm8Il/vnoOe6nOH7pthAiEA0PPxSfox9XuNALrbY468qoQRbeL28nkl3kVCVJ2RiLU=",
  root: "MIIBbjCCARSgAwIBAgIUDdesomCCuVor2yWysq3nkGN6zlYwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJVGVzdCBSb290MCAXDTI2MTIwNzAwMzY0OFoYDzIxMjYxMTEzMDAzNjQ4WjAUMRIwEAYDVQQDDAlUZXN0IFJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQq+kAsBdobnvtWuXHBHtwIw3X0VwQeagc3welWpxZUsM9hzMCXAlYT+cXzuH5UdPThtJwJUv1J/X9Jrlj8itkPo0IwQDAdBgNVHQ4EFgQUDuU49tv1mMERQ6CXbEueVtLDJNMwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIhAMzUA33T42tYsYHiuEEwPNL1kDTPhSciVLN/E5QImLrIAiA5E858+xsLlt8IO6AL+uyCJ/x6OjxAaspWYUlXFiSVSg==",
  root0:
    "MIIBeTCCAR+gAwIBAgIUHylKrZZkWCMLll1R0cEKQMpE2+cwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNVGVzdCBSb290IFBMMDAgFw0yNjEyMDcwMDM2NDhaGA8yMTI2MTExMzAwMzY0OFowGDEWMBQGA1UEAwwNVGVzdCBSb290IFBMMDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABHHHTyiuZ/kTjV9GAaS2t24Y7rZmfzdEX7aT0B7cn14Tu5rt+ER22M38sf2LAkRpwpCHSxmyz9WepjfMYoJxBdyjRTBDMB0GA1UdDgQWBBQ2D9GaIxsCH9cO7tB/TostjeQJuTASBgNVHRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNIADBFAiEAqzOS1wXND+GSic7xFcBXm9AlX8dChrmv9FOLbwtiRfQCID3ABs1xcAhwn+kqeAW0lOyCGrv9YLGalN6vfw/DAuYT",
  root1:
    "MIIBeDCCAR+gAwIBAgIUdcAou27ueeudcsTxn/YkXKcHCBkwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNVGVzdCBSb290IFBMMTAgFw0yNjEyMDcwMDM2NDhaGA8yMTI2MTExMzAwMzY0OFowGDEWMBQGA1UEAwwNVGVzdCBSb290IFBMMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNT1blhnWoFmaGy98tcBxp8Tgg4zq74Mc0lf2Ot7TUFrdz5Kts5SercZ3/1MozVMnyQUIj4wvaTs2CtmpV2CLMejRTBDMB0GA1UdDgQWBBSmuqBw9fmseUAvy6j+s/pzUj7xZzASBgNVHRMBAf8ECDAGAQH/AgEBMA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNHADBEAiAsgS2daUTvujhIJ3jSgJtOCHl1v8v6dzC60X+I78B+SQIgNLd0fmUjeOUXhwWD16bgFuqQoE60cK4CmddOAF0d/CU=",
};

function pem(name: string): string {
  const b64 = B64[name];
  if (b64 === undefined) throw new Error(`no certificate ${name}`);
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`;
}

const at = new Date("2030-01-01T00:00:00Z");
const chain = (leaf: string, intermediates: string[], roots: string[] = ["root"], when = at) =>
  verifyCertificateChain({
    leafPem: pem(leaf),
    trustedRootsPem: roots.map(pem),
    trustedIntermediatesPem: intermediates.map(pem),
    at: when,
  });
const reasonOf = (result: ReturnType<typeof verifyCertificateChain>) => (result.ok ? "ok" : result.reason);

describe("verifyCertificateChain: a private PKI, one rule at a time", () => {
  it("accepts leaf → intermediate → root and reads the leaf's identity", () => {
    const result = chain("leaf", ["inter"]);
    expect(result).toEqual({
      ok: true,
      subjectAlternativeName: "https://example.com/ci",
      emails: ["signer@example.com"],
      uris: ["https://example.com/ci"],
      issuer: "https://issuer.example",
      publicKeyPem: new X509Certificate(pem("leaf")).publicKey.export({ type: "spki", format: "pem" }),
      pathLength: 3,
    });
  });

  it("takes the intermediate from the untrusted chain annotation too", () => {
    const result = verifyCertificateChain({
      leafPem: pem("leaf"),
      chainPem: pem("forged") + pem("inter"),
      trustedRootsPem: [pem("root")],
      at,
    });
    expect(result).toMatchObject({ ok: true, pathLength: 3 });
  });

  it("refuses an issuer with the right name whose signature is not on the leaf (forged intermediate)", () => {
    expect(reasonOf(chain("leaf", ["forged"]))).toBe("no path from the leaf to a trusted root");
    const viaAnnotation = verifyCertificateChain({
      leafPem: pem("leaf"),
      chainPem: pem("forged"),
      trustedRootsPem: [pem("root")],
      at,
    });
    expect(reasonOf(viaAnnotation)).toBe("no path from the leaf to a trusted root");
    // A root with the issuer's name but not its key is no anchor either.
    expect(reasonOf(chain("leaf", [], ["forged"]))).toBe("no path from the leaf to a trusted root");
    expect(reasonOf(chain("leaf", [], ["root"]))).toBe("no path from the leaf to a trusted root");
  });

  it("any configured root is an anchor, and only those are", () => {
    expect(reasonOf(chain("leaf", [], ["inter"]))).toBe("ok");
    expect(reasonOf(chain("leaf", ["inter", "root"], ["root1"]))).toBe(
      "no path from the leaf to a trusted root",
    );
  });

  it("reads the first email as the identity without a URI, and no issuer without Fulcio OIDs", () => {
    expect(chain("leafAny", ["inter"])).toMatchObject({
      ok: true,
      subjectAlternativeName: "a@example.com",
      emails: ["a@example.com", "b@example.com"],
      uris: [],
      issuer: undefined,
    });
  });

  it("reads the deprecated Fulcio issuer OID (.1.1) as raw bytes; no EKU or key usage is no limit", () => {
    expect(chain("leafPlain", ["inter"])).toMatchObject({
      ok: true,
      subjectAlternativeName: "spiffe://x/y",
      emails: [],
      uris: ["spiffe://x/y"],
      issuer: "https://v1.example",
    });
  });

  it("refuses a leaf whose EKU excludes code signing (anyExtendedKeyUsage is allowed)", () => {
    expect(reasonOf(chain("leafServer", ["inter"]))).toBe(
      "certificate 0: extended key usage excludes code signing",
    );
    expect(reasonOf(chain("leafAny", ["inter"]))).toBe("ok");
  });

  it("refuses a leaf whose key usage excludes digital signatures", () => {
    expect(reasonOf(chain("leafKeyEnc", ["inter"]))).toBe("leaf: key usage excludes digital signatures");
  });

  it("refuses an intermediate whose EKU excludes code signing", () => {
    expect(reasonOf(chain("leafUnderServer", ["interServer"]))).toBe(
      "certificate 1: extended key usage excludes code signing",
    );
  });

  it("refuses an issuer that is not a CA", () => {
    expect(reasonOf(chain("leafUnderNotCA", ["interNotCA"]))).toBe("certificate 1: issuer is not a CA");
  });

  it("enforces path length constraints, exactly at the limit", () => {
    // interPL0 (pathlen 0) may issue leaves, not CAs.
    expect(chain("leafUnderPL0", ["interPL0"])).toMatchObject({ ok: true, pathLength: 3 });
    expect(reasonOf(chain("leafDeep", ["interUnderPL0", "interPL0"]))).toBe(
      "certificate 2: path length exceeded",
    );
    // root1 (pathlen 1) may have one intermediate below it; root0 (pathlen 0) none.
    expect(chain("leafR1", ["interR1"], ["root1"])).toMatchObject({ ok: true, pathLength: 3 });
    expect(reasonOf(chain("leafR0", ["interR0"], ["root0"]))).toBe("certificate 2: path length exceeded");
  });

  it("checks every certificate's validity at the given time, and says which", () => {
    const early = new Date("2020-01-01T00:00:00Z");
    expect(reasonOf(chain("leaf", ["inter"], ["root"], early))).toMatch(
      /^leaf not valid at 2020-01-01T00:00:00\.000Z \(valid 2026-12-07T\d\d:\d\d:\d\d\.000Z to 2126-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\)$/,
    );
    const late = new Date("2050-01-01T00:00:00Z");
    expect(reasonOf(chain("leafUnderShort", ["interShort"], ["root"], late))).toMatch(
      /^certificate 1 not valid at 2050-01-01T00:00:00\.000Z \(valid 2026-12-07T.* to 2036-/,
    );
    expect(reasonOf(chain("leafUnderShort", ["interShort"]))).toBe("ok");
  });

  it("reports the first failing path's problem when no path passes", () => {
    expect(reasonOf(chain("leafServer", ["inter", "forged"]))).toBe(
      "certificate 0: extended key usage excludes code signing",
    );
  });

  it("follows at most 8 certificates from leaf to root", () => {
    const intermediates = ["i1", "i2", "i3", "i4", "i5", "i6", "i7"];
    expect(chain("leaf6", intermediates)).toMatchObject({ ok: true, pathLength: 8 });
    expect(reasonOf(chain("leaf7", intermediates))).toBe("no path from the leaf to a trusted root");
  });

  it("refuses unreadable inputs with their own reasons", () => {
    const badBase64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    expect(reasonOf(chain("leaf", ["inter"], []))).toBe("no readable trusted root certificate");
    expect(reasonOf(verifyCertificateChain({ leafPem: pem("leaf"), trustedRootsPem: ["junk"], at }))).toBe(
      "no readable trusted root certificate",
    );
    expect(
      reasonOf(
        verifyCertificateChain({
          leafPem: pem("leaf"),
          trustedRootsPem: [pem("root")],
          trustedIntermediatesPem: [badBase64],
          at,
        }),
      ),
    ).toBe("chain: unreadable PEM certificate");
    expect(
      reasonOf(
        verifyCertificateChain({
          leafPem: pem("leaf"),
          chainPem: badBase64,
          trustedRootsPem: [pem("root")],
          at,
        }),
      ),
    ).toBe("chain: unreadable PEM certificate");
    const notDer = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    expect(reasonOf(verifyCertificateChain({ leafPem: notDer, trustedRootsPem: [pem("root")], at }))).toBe(
      "leaf: not an X.509 certificate",
    );
    expect(reasonOf(verifyCertificateChain({ leafPem: pem("leaf"), trustedRootsPem: [notDer], at }))).toBe(
      "no readable trusted root certificate",
    );
    expect(
      reasonOf(
        verifyCertificateChain({
          leafPem: pem("leaf"),
          chainPem: notDer,
          trustedRootsPem: [pem("root")],
          at,
        }),
      ),
    ).toBe("chain: unreadable PEM certificate");
    expect(reasonOf(verifyCertificateChain({ leafPem: badBase64, trustedRootsPem: [pem("root")], at }))).toBe(
      "leaf: expected exactly one PEM certificate",
    );
    expect(reasonOf(verifyCertificateChain({ leafPem: "", trustedRootsPem: [pem("root")], at }))).toBe(
      "leaf: expected exactly one PEM certificate",
    );
  });
});
