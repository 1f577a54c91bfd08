"""ISO 4217 currency codes and the minor-unit exponents Stripe applies to them (static data, no downloads)."""

from __future__ import annotations

# ISO 4217 List One alphabetic codes (currencies, funds and the X-codes), lowercase as Stripe sends them.
# Kept in transition because balances may still carry them: ANG (-> XCG), BGN (-> EUR), SLL (-> SLE),
# ZWL (-> ZWG). Withdrawn long ago and left out: CUC, HRK, LTL, LVL, MRO, STD, VEF, ...
ISO_4217_CODES: frozenset[str] = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn
    bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn bwp byn bzd
    cad cdf che chf chw clf clp cny cop cou crc cup cve czk
    djf dkk dop dzd
    egp ern etb eur
    fjd fkp
    gbp gel ghs gip gmd gnf gtq gyd
    hkd hnl htg huf
    idr ils inr iqd irr isk
    jmd jod jpy
    kes kgs khr kmf kpw krw kwd kyd kzt
    lak lbp lkr lrd lsl lyd
    mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn mxv myr mzn
    nad ngn nio nok npr nzd
    omr
    pab pen pgk php pkr pln pyg
    qar
    ron rsd rub rwf
    sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl
    thb tjs tmt tnd top try ttd twd tzs
    uah ugx usd usn uyi uyu uyw uzs
    ved ves vnd vuv
    wst
    xaf xag xau xba xbb xbc xbd xcd xcg xdr xof xpd xpf xpt xsu xts xua xxx
    yer
    zar zmw zwg zwl
    """.split()  # noqa: SIM905 - a table of codes reads better than a list literal
)

# Stripe's zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal). Stripe departs from
# ISO here on purpose (e.g. ISO gives isk and huf no decimals, Stripe uses 2), and the amounts follow Stripe.
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
THREE_DECIMAL_CURRENCIES: frozenset[str] = frozenset(("bhd", "jod", "kwd", "omr", "tnd"))


def is_iso_currency(code: object) -> bool:
    """True when `code` is a lowercase active ISO 4217 alphabetic code."""
    return isinstance(code, str) and code in ISO_4217_CODES


def minor_unit_exponent(code: str) -> int:
    """Decimal places of `code`'s minor unit as Stripe applies them: 0, 3 or 2."""
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2
