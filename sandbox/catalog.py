"""Sandbox catalog: the fixed reference data the synthetic world draws from.

Destination countries (ISO alpha-2, calling codes, national numbering plans with E.164
lengths and leading digits), per-destination call and message rates in micro-units of
the currency (1 = 0.000001), billing increments, carriers, connections, messaging
profiles, tags, call outcomes and message errors. Everything here is constant: the
world's randomness lives in `sandbox.world`, so the same seed always draws the same
records from the same catalog.
"""

from __future__ import annotations

import csv
import functools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

NumberType = Literal["local", "mobile", "toll_free", "premium"]
NUMBER_TYPES: tuple[NumberType, ...] = ("local", "mobile", "toll_free", "premium")

# Billing schemes as (initial secs, increment secs).
PER_MINUTE = (60, 60)
SIX_SIX = (6, 6)
PER_SECOND = (1, 1)
THIRTY_SIX = (30, 6)

MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class Plan:
    """One number range of a country: national numbers start with a prefix, `length` digits."""

    prefixes: tuple[str, ...]
    length: int


@dataclass(frozen=True, slots=True)
class Country:
    """A destination: numbering plan, traffic weight, answer ratio, tariffs (micro-units USD)."""

    code: str
    calling_code: str
    weight: float
    asr: float
    billing: tuple[int, int]
    local_rate: int
    mobile_rate: int
    sms_rate: int
    plans: dict[str, Plan]
    carriers: tuple[str, ...]
    # Share of messages that need UCS-2 (non-Latin scripts and emoji).
    ucs2_share: float = 0.1


def _usd(value: str) -> int:
    """A rate written as decimal dollars -> integer micro-dollars, exactly."""
    whole, _, frac = value.partition(".")
    return int(whole) * MICRO + int((frac + "000000")[:6])


def _c(
    code: str,
    calling_code: str,
    weight: float,
    asr: float,
    billing: tuple[int, int],
    rates: tuple[str, str, str],
    local: tuple[tuple[str, ...], int],
    mobile: tuple[tuple[str, ...], int],
    toll_free: tuple[tuple[str, ...], int] | None,
    premium: tuple[tuple[str, ...], int] | None,
    carriers: tuple[str, ...],
    ucs2_share: float = 0.1,
) -> Country:
    plans = {"local": Plan(*local), "mobile": Plan(*mobile)}
    if toll_free is not None:
        plans["toll_free"] = Plan(*toll_free)
    if premium is not None:
        plans["premium"] = Plan(*premium)
    return Country(
        code=code,
        calling_code=calling_code,
        weight=weight,
        asr=asr,
        billing=billing,
        local_rate=_usd(rates[0]),
        mobile_rate=_usd(rates[1]),
        sms_rate=_usd(rates[2]),
        plans=plans,
        carriers=carriers,
        ucs2_share=ucs2_share,
    )


# National significant numbers (after the calling code, without trunk prefix 0), lengths as
# the national plans define them; leading digits are real ranges, the rest random.
COUNTRIES: tuple[Country, ...] = (
    _c("US", "1", 30.0, 0.62, SIX_SIX, ("0.0065", "0.0085", "0.0040"),
       (("2125", "6463", "4155", "3127", "2134", "6175", "3054", "2065", "5126", "4047"), 10),
       (("9172", "3475", "6283", "8726", "3108", "7862", "4257"), 10),
       (("800", "888", "877", "866", "855", "844", "833"), 10), (("900",), 10),
       ("AT&T Mobility", "T-Mobile USA, Inc.", "Verizon Wireless", "Bandwidth.com CLEC, LLC")),
    _c("CA", "1", 5.0, 0.60, SIX_SIX, ("0.0070", "0.0090", "0.0045"),
       (("4163", "6042", "5147", "6135", "4032"), 10), (("6478", "7782", "4389", "5873"), 10),
       (("800", "888"), 10), (("900",), 10),
       ("Rogers Wireless", "Bell Mobility", "TELUS Mobility", "Vidéotron")),
    _c("MX", "52", 4.0, 0.55, THIRTY_SIX, ("0.0120", "0.0350", "0.0180"),
       (("55", "33", "81"), 10), (("56", "22", "44"), 10), (("800",), 10), (("900",), 10),
       ("Telcel", "AT&T México", "Movistar")),
    _c("BR", "55", 2.0, 0.52, THIRTY_SIX, ("0.0150", "0.0600", "0.0200"),
       (("112", "113", "213", "313"), 10), (("119", "219", "319"), 11),
       (("800",), 10), (("900",), 10),
       ("Vivo <Telefônica Brasil>", "Claro", "TIM")),
    _c("AR", "54", 0.8, 0.50, PER_MINUTE, ("0.0200", "0.1100", "0.0300"),
       (("114", "113"), 10), (("911",), 11), (("800",), 10), (("600",), 10),
       ("Personal", "Claro", "Movistar")),
    _c("CO", "57", 0.8, 0.55, PER_MINUTE, ("0.0150", "0.0300", "0.0150"),
       (("601", "604"), 10), (("30", "31", "32"), 10), (("1800",), 10), (("1900",), 10),
       ("Claro", "Movistar", "Tigo")),
    _c("CL", "56", 0.6, 0.57, PER_MINUTE, ("0.0120", "0.0400", "0.0250"),
       (("2",), 9), (("9",), 9), (("800",), 9), (("600",), 9),
       ("Entel", "Movistar", "WOM")),
    _c("PE", "51", 0.5, 0.53, PER_MINUTE, ("0.0130", "0.0500", "0.0300"),
       (("1",), 8), (("9",), 9), (("800",), 8), (("805",), 8),
       ("Claro", "Movistar", "Entel")),
    _c("GB", "44", 10.0, 0.64, PER_MINUTE, ("0.0080", "0.0220", "0.0350"),
       (("20", "161", "121", "131", "113"), 10), (("71", "73", "74", "75", "77", "78", "79"), 10),
       (("800", "808"), 10), (("909", "908"), 10),
       ("EE Limited", "Vodafone UK", 'O2 (UK) "Telefónica"', "Three UK")),
    _c("IE", "353", 1.2, 0.63, PER_MINUTE, ("0.0110", "0.0450", "0.0400"),
       (("1",), 8), (("83", "85", "86", "87", "89"), 9), (("1800",), 10), (("1550",), 10),
       ("Vodafone Ireland", "Three Ireland", "eir")),
    _c("DE", "49", 7.0, 0.66, PER_SECOND, ("0.0090", "0.0350", "0.0750"),
       (("30", "89", "40", "69"), 10), (("151", "160", "170", "171", "172", "176"), 11),
       (("800",), 10), (("900",), 10),
       ("Telekom Deutschland GmbH", "Vodafone GmbH", "Telefónica Germany GmbH & Co. OHG")),
    _c("FR", "33", 6.0, 0.60, PER_SECOND, ("0.0085", "0.0300", "0.0600"),
       (("1", "2", "3", "4", "5"), 9), (("6", "7"), 9), (("80",), 9), (("89",), 9),
       ("Orange", "SFR", "Bouygues Télécom", "Free Mobile")),
    _c("ES", "34", 3.0, 0.61, THIRTY_SIX, ("0.0080", "0.0250", "0.0550"),
       (("91", "93", "96"), 9), (("6", "71", "72"), 9), (("900",), 9), (("803", "806", "807"), 9),
       ("Movistar", "Orange España", "Vodafone España")),
    _c("IT", "39", 3.0, 0.58, THIRTY_SIX, ("0.0095", "0.0350", "0.0600"),
       (("06", "02"), 10), (("32", "33", "34", "35", "36", "37", "38", "39"), 10),
       (("800",), 9), (("899",), 9),
       ("TIM", "Vodafone Italia", "WINDTRE", "Iliad")),
    _c("PT", "351", 0.8, 0.62, PER_MINUTE, ("0.0110", "0.0400", "0.0400"),
       (("21", "22"), 9), (("91", "93", "96"), 9), (("800",), 9), (("760",), 9),
       ("MEO", "NOS", "Vodafone Portugal")),
    _c("NL", "31", 2.0, 0.65, PER_MINUTE, ("0.0095", "0.0500", "0.0700"),
       (("20", "10", "70"), 9), (("6",), 9), (("800",), 7), (("900",), 7),
       ("KPN", "VodafoneZiggo", "Odido")),
    _c("BE", "32", 1.2, 0.63, PER_MINUTE, ("0.0110", "0.0500", "0.0650"),
       (("2", "3"), 8), (("45", "46", "47", "48", "49"), 9), (("800",), 8), (("900",), 8),
       ("Proximus", "Orange Belgium", "BASE")),
    _c("CH", "41", 1.2, 0.68, PER_SECOND, ("0.0150", "0.1200", "0.0700"),
       (("44", "22", "31"), 9), (("75", "76", "77", "78", "79"), 9), (("800",), 9), (("900",), 9),
       ("Swisscom", "Sunrise", "Salt")),
    _c("AT", "43", 0.9, 0.64, PER_MINUTE, ("0.0120", "0.0500", "0.0650"),
       (("1",), 9), (("664", "676", "699"), 10), (("800",), 9), (("900",), 9),
       ("A1 Telekom Austria", "Magenta Telekom", "Drei")),
    _c("SE", "46", 1.0, 0.66, PER_MINUTE, ("0.0090", "0.0300", "0.0500"),
       (("8",), 9), (("70", "72", "73", "76", "79"), 9), (("20",), 9), (("900",), 9),
       ("Telia", "Tele2", "Telenor Sverige")),
    _c("NO", "47", 0.7, 0.67, PER_MINUTE, ("0.0100", "0.0350", "0.0500"),
       (("21", "22", "23"), 8), (("4", "9"), 8), (("800",), 8), (("820",), 8),
       ("Telenor Norge", "Telia Norge", "Ice")),
    _c("DK", "45", 0.7, 0.66, PER_SECOND, ("0.0095", "0.0300", "0.0450"),
       (("33", "35", "36", "38"), 8), (("20", "21", "22", "26", "28", "29"), 8),
       (("80",), 8), (("90",), 8),
       ("TDC NET", "Telenor Danmark", "3 Danmark")),
    _c("FI", "358", 0.5, 0.65, PER_MINUTE, ("0.0200", "0.0600", "0.0550"),
       (("9",), 8), (("40", "44", "50"), 9), (("800",), 9), (("700",), 9),
       ("Elisa", "Telia Finland", "DNA")),
    _c("PL", "48", 1.5, 0.59, PER_SECOND, ("0.0110", "0.0250", "0.0300"),
       (("22", "12", "61"), 9), (("50", "51", "53", "60", "69", "72", "78", "88"), 9),
       (("800",), 9), (("700",), 9),
       ("Orange Polska", "Play", "Plus", "T-Mobile Polska")),
    _c("CZ", "420", 0.6, 0.61, PER_MINUTE, ("0.0120", "0.0300", "0.0400"),
       (("2",), 9), (("60", "72", "73", "77", "79"), 9), (("800",), 9), (("90",), 9),
       ("O2 Czech Republic", "T-Mobile CZ", "Vodafone CZ")),
    _c("RO", "40", 0.8, 0.56, PER_MINUTE, ("0.0150", "0.0450", "0.0450"),
       (("21",), 9), (("72", "74", "75", "76", "78"), 9), (("800",), 9), (("900",), 9),
       ("Orange România", "Vodafone România", "Digi")),
    _c("GR", "30", 0.6, 0.58, PER_MINUTE, ("0.0130", "0.0500", "0.0500"),
       (("21",), 10), (("69",), 10), (("800",), 10), (("90",), 10),
       ("Cosmote", "Vodafone Greece", "Nova"), ucs2_share=0.6),
    _c("TR", "90", 1.0, 0.54, PER_MINUTE, ("0.0300", "0.1500", "0.0350"),
       (("212", "216", "312"), 10), (("53", "54", "55"), 10), (("800",), 10), (("900",), 10),
       ("Turkcell", "Vodafone Türkiye", "Türk Telekom"), ucs2_share=0.3),
    _c("UA", "380", 0.7, 0.50, PER_MINUTE, ("0.1100", "0.1800", "0.0600"),
       (("44",), 9), (("50", "63", "67", "93"), 9), (("800",), 9), (("900",), 9),
       ("Київстар", "Vodafone Україна", "lifecell"), ucs2_share=0.7),
    _c("IL", "972", 0.8, 0.60, PER_MINUTE, ("0.0090", "0.0350", "0.0450"),
       (("2", "3", "4", "8", "9"), 8), (("50", "52", "53", "54", "58"), 9),
       (("1800",), 10), (("1900",), 10),
       ("Partner", "Cellcom", "פלאפון"), ucs2_share=0.6),
    _c("AE", "971", 0.9, 0.55, PER_MINUTE, ("0.1200", "0.2000", "0.0450"),
       (("4", "2"), 8), (("50", "55", "56"), 9), (("800",), 8), (("900",), 8),
       ("Etisalat by e&", "du"), ucs2_share=0.6),
    _c("SA", "966", 0.6, 0.52, PER_MINUTE, ("0.0800", "0.1500", "0.0450"),
       (("11", "12"), 9), (("50", "53", "55", "56"), 9), (("800",), 10), (("700",), 9),
       ("STC", "Mobily", "Zain KSA"), ucs2_share=0.6),
    _c("ZA", "27", 0.7, 0.50, PER_MINUTE, ("0.0400", "0.1000", "0.0250"),
       (("11", "21", "31"), 9), (("61", "71", "72", "82", "83"), 9), (("800",), 9), (("86",), 9),
       ("Vodacom", "MTN", "Cell C")),
    _c("NG", "234", 0.6, 0.45, PER_MINUTE, ("0.0900", "0.1200", "0.0450"),
       (("1",), 8), (("803", "806", "805", "813", "906"), 10), (("800",), 10), (("700",), 10),
       ("MTN Nigeria", "Airtel Nigeria", "Glo", "9mobile")),
    _c("KE", "254", 0.4, 0.48, PER_MINUTE, ("0.0500", "0.0700", "0.0300"),
       (("20",), 9), (("70", "71", "72"), 9), (("800",), 9), (("900",), 9),
       ("Safaricom", "Airtel Kenya")),
    _c("EG", "20", 0.5, 0.47, PER_MINUTE, ("0.0800", "0.1200", "0.0500"),
       (("2",), 9), (("10", "11", "12", "15"), 10), (("800",), 10), (("900",), 10),
       ("Vodafone Egypt", "Orange Egypt", "اتصالات مصر"), ucs2_share=0.7),
    _c("IN", "91", 3.0, 0.50, PER_MINUTE, ("0.0150", "0.0150", "0.0080"),
       (("11", "22", "80"), 10), (("9", "8", "7"), 10), (("1800",), 11), (("1900",), 11),
       ("Jio", "Bharti Airtel", "Vi (Vodafone Idea)"), ucs2_share=0.3),
    _c("PK", "92", 0.5, 0.46, PER_MINUTE, ("0.0700", "0.0800", "0.0400"),
       (("21", "42", "51"), 10), (("30", "31", "33", "34"), 10), (("800",), 8), (("900",), 8),
       ("Jazz", "Telenor Pakistan", "Zong")),
    _c("PH", "63", 1.5, 0.55, PER_MINUTE, ("0.1200", "0.1500", "0.0250"),
       (("2",), 9), (("917", "918", "927", "939"), 10), (("1800",), 11), (("1900",), 11),
       ("Globe Telecom", "Smart Communications", "DITO")),
    _c("ID", "62", 0.6, 0.49, PER_MINUTE, ("0.0500", "0.0700", "0.0350"),
       (("21", "22"), 10), (("811", "812", "813", "857"), 11), (("800",), 10), (("809",), 10),
       ("Telkomsel", "Indosat Ooredoo Hutchison", "XL Axiata")),
    _c("TH", "66", 0.5, 0.53, PER_MINUTE, ("0.0250", "0.0250", "0.0300"),
       (("2",), 8), (("6", "8", "9"), 9), (("1800",), 10), (("1900",), 10),
       ("AIS", "TrueMove H", "ดีแทค"), ucs2_share=0.7),
    _c("VN", "84", 0.4, 0.51, PER_MINUTE, ("0.0700", "0.0800", "0.0500"),
       (("24", "28"), 10), (("9", "3"), 9), (("1800",), 8), (("1900",), 8),
       ("Viettel", "VinaPhone", "MobiFone"), ucs2_share=0.4),
    _c("JP", "81", 1.5, 0.63, SIX_SIX, ("0.0250", "0.0900", "0.0700"),
       (("3", "6"), 9), (("70", "80", "90"), 10), (("120",), 9), (("990",), 9),
       ("NTT docomo", "ソフトバンク", "KDDI (au)", "楽天モバイル"), ucs2_share=0.8),
    _c("KR", "82", 0.7, 0.64, PER_MINUTE, ("0.0200", "0.0300", "0.0300"),
       (("2",), 9), (("10",), 10), (("80",), 10), (("60",), 10),
       ("SK Telecom", "KT", "LG U+"), ucs2_share=0.8),
    _c("CN", "86", 1.0, 0.52, PER_MINUTE, ("0.0150", "0.0150", "0.0300"),
       (("10", "21"), 10), (("13", "15", "18"), 11), (("400",), 10), None,
       ("中国移动 China Mobile", "中国联通", "China Telecom"), ucs2_share=0.9),
    _c("HK", "852", 0.6, 0.62, PER_MINUTE, ("0.0120", "0.0120", "0.0350"),
       (("2", "3"), 8), (("5", "6", "9"), 8), (("800",), 9), None,
       ("CSL", "3HK", "SmarTone"), ucs2_share=0.5),
    _c("SG", "65", 0.8, 0.66, PER_MINUTE, ("0.0100", "0.0120", "0.0300"),
       (("6",), 8), (("8", "9"), 8), (("1800",), 11), (("1900",), 11),
       ("Singtel", "StarHub", "M1")),
    _c("AU", "61", 2.0, 0.62, THIRTY_SIX, ("0.0150", "0.0400", "0.0350"),
       (("2", "3", "7", "8"), 9), (("4",), 9), (("1800",), 10), (("1900",), 10),
       ("Telstra", "Optus", "Vodafone AU")),
    _c("NZ", "64", 0.5, 0.63, PER_MINUTE, ("0.0200", "0.0600", "0.0450"),
       (("9", "4", "3"), 8), (("21", "22", "27"), 9), (("800",), 9), (("900",), 8),
       ("One NZ", "Spark", "2degrees")),
)

# Destinations the clean world never calls: the countries the shipped high-risk list
# (queries/seeds/high_risk_destinations.csv) names, here so that anomalies can send traffic
# there. Weight 0 keeps them out of the normal mix; rates are their high termination rates.
HIGH_RISK_COUNTRIES: tuple[Country, ...] = (
    _c("CU", "53", 0.0, 0.45, PER_MINUTE, ("0.9500", "1.0500", "0.1200"),
       (("7",), 8), (("5",), 8), None, None,
       ("ETECSA (Cubacel)",)),
    _c("LV", "371", 0.0, 0.60, PER_MINUTE, ("0.0200", "0.0500", "0.0500"),
       (("67", "65"), 8), (("2",), 8), (("80",), 8), (("90",), 8),
       ("LMT", "Tele2 Latvia", "Bite Latvija")),
    _c("LT", "370", 0.0, 0.60, PER_MINUTE, ("0.0200", "0.0600", "0.0500"),
       (("5", "37"), 8), (("6",), 8), (("800",), 8), (("90",), 8),
       ("Telia Lietuva", "Bitė Lietuva", "Tele2 Lithuania")),
    _c("EE", "372", 0.0, 0.62, PER_MINUTE, ("0.0300", "0.1000", "0.0500"),
       (("6",), 7), (("5",), 8), (("800",), 7), (("900",), 7),
       ("Telia Eesti", "Elisa Eesti", "Tele2 Eesti")),
    _c("LI", "423", 0.0, 0.62, PER_MINUTE, ("0.0500", "0.4500", "0.0600"),
       (("2", "3"), 7), (("7",), 7), (("800",), 7), (("90",), 7),
       ("Telecom Liechtenstein", "Salt Liechtenstein")),
    _c("SO", "252", 0.0, 0.40, PER_MINUTE, ("0.7500", "0.8000", "0.1500"),
       (("1",), 8), (("61", "62", "63", "90"), 9), None, None,
       ("Hormuud", "Golis", "Telesom")),
    _c("SL", "232", 0.0, 0.42, PER_MINUTE, ("0.4500", "0.5000", "0.1200"),
       (("22",), 8), (("76", "77", "78", "88", "30", "33"), 8), None, None,
       ("Orange Sierra Leone", "Africell")),
    _c("GN", "224", 0.0, 0.42, PER_MINUTE, ("0.4000", "0.5000", "0.1200"),
       (("30",), 9), (("62", "65", "66"), 9), None, None,
       ("Orange Guinée", "MTN Guinée", "Cellcom Guinée")),
    _c("GW", "245", 0.0, 0.40, PER_MINUTE, ("0.7000", "0.7500", "0.1500"),
       (("443",), 9), (("95", "96"), 9), None, None,
       ("Orange Bissau", "MTN Bissau")),
    _c("GM", "220", 0.0, 0.45, PER_MINUTE, ("0.5500", "0.6000", "0.1200"),
       (("4",), 7), (("7", "9", "3"), 7), None, None,
       ("Africell", "QCell")),
    _c("TV", "688", 0.0, 0.50, PER_MINUTE, ("1.2000", "1.3000", "0.2000"),
       (("2",), 5), (("90",), 6), None, None,
       ("Tuvalu Telecom",)),
    _c("CK", "682", 0.0, 0.50, PER_MINUTE, ("1.1000", "1.2000", "0.2000"),
       (("2",), 5), (("5", "7"), 5), None, None,
       ("Vodafone Cook Islands",)),
    _c("NR", "674", 0.0, 0.50, PER_MINUTE, ("1.0000", "1.1000", "0.2000"),
       (("444",), 7), (("55",), 7), None, None,
       ("Digicel Nauru",)),
)
# Every country a record may name: the clean world's mix first, so its indices never move.
DESTINATIONS: tuple[Country, ...] = COUNTRIES + HIGH_RISK_COUNTRIES

# Our side of every call and message: DIDs we own, in the US and the UK.
DID_COUNTRIES = ("US", "GB")
DID_SHARE_GB = 0.2
DID_PLANS: dict[str, tuple[str, Plan]] = {
    "US": ("1", Plan(("2125", "4155", "3127", "6175", "5126"), 10)),
    "GB": ("44", Plan(("20", "161"), 10)),
}
DID_POOL_SIZE = 24

# Inbound legs are billed by our DID's country, dearer when the caller is on a mobile.
INBOUND_RATES: dict[str, dict[str, int]] = {
    "US": {"local": _usd("0.0035"), "mobile": _usd("0.0035")},
    "GB": {"local": _usd("0.0060"), "mobile": _usd("0.0110")},
}
# Receiving an SMS is free on US DIDs, a fraction of a cent on UK ones.
INBOUND_SMS_RATES: dict[str, int] = {"US": 0, "GB": _usd("0.0008")}
MMS_MULTIPLIER = 3
# US A2P (10DLC) pass-through carrier fees on outbound messages; zero elsewhere.
US_CARRIER_FEE = {"sms": _usd("0.003"), "mms": _usd("0.005")}
PREMIUM_MULTIPLIER = 20
PREMIUM_FLOOR = _usd("0.25")
TOLL_FREE_MULTIPLIER = 3  # international toll-free costs the caller; NANP toll-free is free
EUR_PER_USD_PERCENT = 92

# Outbound destination mix by number type, and inbound callers' (local/mobile only).
OUTBOUND_TYPE_WEIGHTS = (0.45, 0.45, 0.06, 0.04)
INBOUND_TYPE_WEIGHTS = (0.5, 0.5, 0.0, 0.0)
OUTBOUND_SHARE_CALLS = 0.6
OUTBOUND_SHARE_MESSAGES = 0.7


@dataclass(frozen=True, slots=True)
class Party:
    """A connection or messaging profile: stable id, (awkward) name, billing currency, weight."""

    id: str
    name: str
    currency: str
    weight: float


_NAMESPACE = uuid.UUID("4b5e0c4e-5a2f-4f4e-9a61-0f3c7d2a9b10")


def _party(kind: str, name: str, currency: str, weight: float) -> Party:
    return Party(str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}")), name, currency, weight)


CONNECTIONS: tuple[Party, ...] = (
    _party("connection", "Main Trunk", "USD", 0.34),
    _party("connection", 'Bob\'s "Main" Trunk', "USD", 0.16),
    _party("connection", "東京 トランク", "USD", 0.08),
    _party("connection", "Київ", "EUR", 0.10),
    _party("connection", "<script>alert(1)</script>", "USD", 0.06),
    _party("connection", "EU Carrier — Frankfurt 🇩🇪", "EUR", 0.14),
    _party("connection", "Support Line ☎️ (backup)\\overflow", "USD", 0.12),
)

MESSAGING_PROFILES: tuple[Party, ...] = (
    _party("messaging_profile", "Marketing", "USD", 0.35),
    _party("messaging_profile", 'Alerts & "OTP"', "USD", 0.25),
    _party("messaging_profile", "顧客サポート", "USD", 0.10),
    _party("messaging_profile", "Оповіщення", "EUR", 0.12),
    _party("messaging_profile", "<b>bold</b> & <i>it</i>", "USD", 0.06),
    _party("messaging_profile", "🚀 Launch\nteam", "EUR", 0.12),
)

TAGS: tuple[str, ...] = (
    "vip",
    "billing",
    "support",
    "campaign:spring-2026",
    "région-sud",
    'A/B "test"',
    "<tag>",
    "😀",
    "über",
    "日本",
    "line\tbreak",
)
# Probability of 0, 1, 2, 3 tags on a record.
TAG_COUNT_WEIGHTS = (0.45, 0.3, 0.17, 0.08)

# Call outcomes: status, hangup cause, SIP code, share of the unanswered calls.
# ("answered", "normal_clearing", 200) takes the country's ASR instead.
ANSWERED = ("answered", "normal_clearing", 200)
UNANSWERED: tuple[tuple[str, str, int, float], ...] = (
    ("busy", "user_busy", 486, 0.26),
    ("no_answer", "no_answer", 480, 0.24),
    ("no_answer", "no_answer", 408, 0.10),
    ("failed", "call_rejected", 603, 0.10),
    ("failed", "network_out_of_order", 503, 0.06),
    ("failed", "unallocated_number", 404, 0.06),
    ("cancelled", "originator_cancel", 487, 0.18),
)
# Seconds of ringing before the call ends (min, max) per unanswered status.
RING_SECS: dict[str, tuple[float, float]] = {
    "busy": (0.3, 4.0),
    "no_answer": (18.0, 60.0),
    "failed": (0.05, 3.0),
    "cancelled": (1.5, 30.0),
}

# Message outcomes (outbound); inbound messages are all "received".
MESSAGE_STATUSES: tuple[tuple[str, float], ...] = (
    ("delivered", 0.84),
    ("sent", 0.03),
    ("queued", 0.01),
    ("delivery_failed", 0.05),
    ("delivery_unconfirmed", 0.05),
    ("gateway_rejected", 0.02),
)
MMS_SHARE = 0.08
MESSAGE_ERRORS: dict[str, tuple[tuple[str, str], ...]] = {
    "delivery_failed": (
        ("30003", "Unreachable handset"),
        ("30005", "Unknown destination handset"),
        ("30006", "Landline or unreachable carrier"),
    ),
    "gateway_rejected": (
        ("30007", "Message filtered"),
        ("40002", "Blocked as spam \"content\" <policy>"),
    ),
}

# Single-part limits and per-part sizes of a concatenated message, by encoding.
SEGMENTS: dict[str, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}

MALFORMED_REASONS: dict[str, tuple[str, ...]] = {
    "cdrs": ("missing_id", "bad_timestamp", "bad_number", "negative_duration"),
    "mdrs": ("missing_id", "bad_timestamp", "bad_number"),
}
BAD_TIMESTAMPS = ("2026-13-45T99:00:00Z", "yesterday-ish")
BAD_NUMBERS = ("12345", "+44 20 7946")

# Weekly shape, Monday first: averages 1.0 so the mean daily volume is the one asked for.
WEEKDAY_SHAPE = (1.12, 1.13, 1.12, 1.11, 1.07, 0.75, 0.70)
# Relative traffic per UTC hour: quiet at night, peaks mid-morning and mid-afternoon.
HOURLY_SHAPE = (
    0.6, 0.4, 0.3, 0.3, 0.3, 0.5, 1.0, 2.0, 3.6, 5.0, 5.6, 5.4,
    4.6, 5.0, 5.5, 5.6, 5.2, 4.4, 3.4, 2.8, 2.3, 1.8, 1.3, 0.9,
)


def outbound_rate(country: Country, number_type: str) -> int:
    """A destination's per-minute rate (micro-USD) for one number type."""
    if number_type == "local":
        return country.local_rate
    if number_type == "mobile":
        return country.mobile_rate
    if number_type == "toll_free":
        return 0 if country.calling_code == "1" else country.local_rate * TOLL_FREE_MULTIPLIER
    return max(PREMIUM_FLOOR, country.local_rate * PREMIUM_MULTIPLIER)


@dataclass(frozen=True, slots=True)
class HighRiskRange:
    """One row of the shipped high-risk list: a number range toll fraud commonly targets."""

    country_code: str
    calling_code: str
    prefix: str
    range_type: str
    note: str


HIGH_RISK_COLUMNS = ("country_code", "calling_code", "prefix", "range_type", "note")


def high_risk_file() -> Path:
    """Where the shipped high-risk list is: the models' seeds folder."""
    # Imported here: the models' package loads duckdb, which only IRSF generation needs to wait for.
    from pipelines.models.discover import QUERIES_DIR

    return QUERIES_DIR / "seeds" / "high_risk_destinations.csv"


@functools.cache
def high_risk_ranges() -> tuple[HighRiskRange, ...]:
    """The shipped high-risk list -> its ranges, in file order (read once)."""
    path = high_risk_file()
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != HIGH_RISK_COLUMNS:
            raise ValueError(f"{path}: the columns must be {', '.join(HIGH_RISK_COLUMNS)}, got {reader.fieldnames}")
        return tuple(HighRiskRange(**{name: row[name] for name in HIGH_RISK_COLUMNS}) for row in reader)


def high_risk_plans(country: Country) -> tuple[tuple[NumberType, Plan], ...]:
    """A country's ranges on the high-risk list as (number type, plan) in its numbering plan.

    A whole-country row is its local and mobile plans; a prefix row is the plan it falls
    in, narrowed to the prefix. A country the list does not name falls back to its premium
    plan (or, with none, its local plan, as the world's number-type fallback does).
    """
    plans: list[tuple[NumberType, Plan]] = []
    for row in high_risk_ranges():
        if row.country_code != country.code:
            continue
        if not row.prefix:
            plans += [("local", country.plans["local"]), ("mobile", country.plans["mobile"])]
            continue
        plans.append(_narrowed(country, row.prefix))
    if plans:
        return tuple(plans)
    number_type: NumberType = "premium" if "premium" in country.plans else "local"
    return ((number_type, country.plans[number_type]),)


def _narrowed(country: Country, prefix: str) -> tuple[NumberType, Plan]:
    """The plan of a country a national prefix falls in, restricted to that prefix."""
    for number_type in NUMBER_TYPES:
        plan = country.plans.get(number_type)
        if plan is None:
            continue
        inside = tuple(p for p in plan.prefixes if p.startswith(prefix))
        if inside:
            return number_type, Plan(inside, plan.length)
        if any(prefix.startswith(p) for p in plan.prefixes):
            return number_type, Plan((prefix,), plan.length)
    raise ValueError(
        f"{high_risk_file()}: prefix {prefix!r} of {country.code} is in none of its catalog plans "
        "(add the range to sandbox/catalog.py)"
    )
