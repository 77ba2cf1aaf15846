"""Weight quantizers: standardised sign binarisation (BEST-5/6) and LSQ (QSD-4/5)."""
