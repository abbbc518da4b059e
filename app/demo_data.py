"""A realistic demo caseload, fast: ``flask demo generate --cases N`` (development and testing only).

What it makes (figures from shared/domain/STATISTICS.md, docs/demo-data.md has the long form):

* **Inflow** spread over the last two years, month by month, falling year on year like the EU's
  (1.05M in 2023, 912k in 2024, 669k in 2025) with an autumn peak; registrations on working days;
  about 8% registered late (more than 5 days after the claim was made).
* **People**: nationalities in proportion to the EU's 2024 first-time applicants; about a quarter
  children, about a third men aged 18-34, families with dependants, about 4% unaccompanied minors
  (mostly boys of 16-17, mostly Syrian and Afghan); names from per-nationality name lists, other
  spellings, estimated dates of birth, documents, Eurodac hits, previous applications,
  vulnerabilities, claim grounds and a short statement.
* **Triage** through the real engine: the active ruleset (stored and activated on first use, as
  registration does) with the reference data (the shipped recognition-rate CSV is imported when
  the table is empty), evaluated on the day the claim was registered; a claim lodged later is
  triaged again that day; one never lodged goes to implicit withdrawal after 21 days.
* **Work**: assignment to the caseworkers of each office, interviews, decisions per person with
  outcomes drawn from the nationality's recognition rate (refugee status, subsidiary protection,
  humanitarian status), four-eyes approval by a supervisor (some drafts returned first),
  service, appeals with outcomes, closures, withdrawals and transfers, each on its own date, so
  the backlog, ageing, flows, time to decision and deadline compliance reports show real numbers.
  Events after the moment of generation do not happen: recent cases are still open.
* **Audit**: an event for everything that happened (registration, triage, assignment, interview,
  decision steps, transitions), dated when it happened, appended to the hash chain.

How it stays fast and faithful. A forked producer simulates and seals the next batches while
the main process stores the current one; rows go to the driver as tuples (``executemany`` on
SQLite, ``COPY`` on PostgreSQL), a batch of cases per transaction, never an ORM object per row.
Yet every S2/S3 section is encrypted with the real keyring and the associated data the models'
descriptors use (``table.column:row-id``), the blind indexes and duplicate-detection keys are
computed as registration computes them, and the audit events are encrypted and hash-chained in
bulk with the encoding of app/audit/chain.py, checked under the chain-head lock (one lock per
batch, events inserted in bulk, the head updated once). Each batch checks its fast paths against
the application once (registration schema, JSON encoding, a decryption, a chain hash), so a
change there stops generation instead of storing what the application cannot read. Memory does
not grow with the number of cases (docs/demo-data.md).

Reproducible: the same seed gives the same plaintext (people, dates, outcomes) on the same day;
ciphertexts differ (random nonces), and so do row ids (random by design). No letters are rendered
(PDF rendering takes about a second per letter).
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import json
import math
import multiprocessing
import operator
import os
import random
import time as clock
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache, partial
from pathlib import Path

from flask import current_app
from sqlalchemy import JSON, Date, func, select, update

from app import crypto
from app.audit import chain
from app.audit.chain import event_hash
from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.services import record
from app.auth.models import Office, User
from app.auth.permissions import Role
from app.crypto import EncryptedJSON
from app.database import insert_rows
from app.db_types import UTCDateTime
from app.decisions import settings as decision_settings
from app.decisions.models import Appeal, Decision, DecisionReview, Interview, Notification
from app.demo import DEMO_ACCOUNTS, DEMO_OFFICES, create_demo_users
from app.extensions import db
from app.intake import matching
from app.intake.models import Case, DocumentNumberIndex, Person, PersonMatchKey
from app.intake.schemas import LATE_REGISTRATION_DAYS, age_on, parse_registration
from app.intake.services import (BIDX_DATE_OF_BIRTH, BIDX_DOCUMENT_NUMBER, BIDX_FAMILY_NAME, BIDX_GIVEN_NAMES,
                                 BIDX_MATCH_KEY, REFERENCE_ALPHABET, REPRESENTATIVE_WORKING_DAYS,
                                 SPECIAL_NEEDS_ASSESSMENT_DAYS, _age_group, add_working_days,
                                 identity_for_matching, normalise_document_number)
from app.triage import services as triage_services
from app.triage.facts import REFERENCE_FACTS, case_facts, changed_facts
from app.triage.models import RecognitionRate, TriageRecord

RATES_CSV = Path(__file__).resolve().parent.parent / "data" / "recognition-rates-eu-2024.csv"
ENVIRONMENTS = ("development", "testing")
DIALECTS = ("sqlite", "postgresql")  # the two the rows are written for (executemany, COPY)
DEFAULT_BATCH_SIZE = 2000
PIPELINE_DEPTH = 2  # batches being prepared ahead of the one being stored
MIN_BATCHES = 4  # a run is cut in at least this many batches, so preparing and storing overlap
HISTORY_DAYS = 730
GENERATED_PASSWORD_HASH = "!"  # noqa: S105 - not an Argon2 hash: generated staff cannot sign in
CASES_PER_CASEWORKER = 300  # about what one caseworker decides in two years
MAX_CASEWORKERS_PER_OFFICE = 500

# -- reference figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """One nationality: its share of first-time applicants (%), recognition rate (refugee +
    subsidiary protection, %), national humanitarian status (%), name list, languages (ISO
    639-3, the most common first), claim grounds, transit route and arrival pattern."""

    code: str
    share: float
    protection: float
    humanitarian: float
    names: str
    languages: tuple[str, ...]
    grounds: tuple[str, ...]
    route: tuple[str, ...] = ()
    by_air: float = 0.0          # arrive by air, visa-free or with a visa: few Eurodac hits, inland claims
    by_sea: float = 0.0          # disembarked after a search and rescue at sea
    passport: float = 0.3        # share holding a passport
    estimated_birth: float = 0.15


# Shares and rates: STATISTICS.md where it gives them (SYR, VEN, AFG, TUR, PAK, BGD, GIN, UKR, SDN);
# the rest are rounded orders of magnitude for a believable mix, not statistics.
ORIGINS: tuple[Origin, ...] = (
    Origin("SYR", 16, 90, 2, "levant", ("apc", "ara", "kmr"),
           ("generalised_violence", "armed_conflict", "political_opinion", "military_service", "religion"),
           ("TUR", "GRC", "MKD", "SRB", "HUN"), by_sea=0.1, passport=0.45),
    Origin("VEN", 8, 4, 85, "spanish", ("spa",), ("political_opinion", "economic_hardship", "generalised_violence"),
           by_air=0.95, passport=0.85, estimated_birth=0.02),
    Origin("AFG", 8, 63, 3, "afghan", ("prs", "pus", "haz"),
           ("political_opinion", "religion", "particular_social_group", "gender", "generalised_violence"),
           ("IRN", "TUR", "GRC", "BGR", "SRB"), passport=0.15, estimated_birth=0.45),
    Origin("TUR", 6, 15, 2, "turkish", ("tur", "kmr"), ("political_opinion", "nationality", "religion"),
           by_air=0.5, passport=0.7, estimated_birth=0.02),
    Origin("COL", 6, 5, 10, "spanish", ("spa",), ("generalised_violence", "particular_social_group",
                                                  "political_opinion"), by_air=0.95, passport=0.9,
           estimated_birth=0.02),
    Origin("BGD", 4, 3, 2, "bengali", ("ben",), ("political_opinion", "economic_hardship", "religion"),
           ("ARE", "LBY"), by_sea=0.5, passport=0.5, estimated_birth=0.1),
    Origin("PAK", 3, 12, 2, "pakistani", ("urd", "pan", "pus"), ("religion", "political_opinion",
                                                                 "particular_social_group"),
           ("IRN", "TUR", "GRC", "BGR"), by_sea=0.2, passport=0.5),
    Origin("GIN", 2, 30, 2, "west_african", ("fuf", "mnk", "fra"), ("political_opinion", "particular_social_group",
                                                                    "gender"),
           ("MLI", "DZA", "LBY"), by_sea=0.8, passport=0.2, estimated_birth=0.4),
    Origin("UKR", 1.5, 80, 2, "ukrainian", ("ukr", "rus"), ("armed_conflict", "generalised_violence"),
           by_air=0.2, passport=0.8, estimated_birth=0.01),
    Origin("SDN", 1.5, 70, 2, "arabic", ("ara",), ("armed_conflict", "generalised_violence", "race"),
           ("TCD", "LBY"), by_sea=0.7, passport=0.15, estimated_birth=0.4),
    Origin("IRQ", 3, 30, 3, "arabic", ("ara", "ckb", "kmr"), ("political_opinion", "religion", "generalised_violence"),
           ("TUR", "GRC", "BGR", "SRB"), by_air=0.1, passport=0.4),
    Origin("NGA", 2, 10, 3, "nigerian", ("eng", "yor", "ibo", "hau"), ("particular_social_group", "religion",
                                                                      "gender"),
           ("NER", "LBY"), by_sea=0.6, passport=0.4, estimated_birth=0.2),
    Origin("EGY", 2, 5, 2, "arabic", ("arz", "ara"), ("political_opinion", "economic_hardship", "religion"),
           ("LBY",), by_sea=0.8, passport=0.5),
    Origin("MAR", 2.5, 5, 2, "arabic", ("ary", "ara", "fra"), ("economic_hardship", "particular_social_group"),
           ("ESP",), by_sea=0.5, passport=0.5),
    Origin("SOM", 2, 60, 3, "somali", ("som",), ("generalised_violence", "particular_social_group", "gender"),
           ("ETH", "SDN", "LBY"), by_sea=0.6, passport=0.05, estimated_birth=0.6),
    Origin("ERI", 2, 80, 2, "tigrinya", ("tir",), ("military_service", "political_opinion", "religion"),
           ("ETH", "SDN", "LBY"), by_sea=0.7, passport=0.05, estimated_birth=0.5),
    Origin("IRN", 2, 40, 3, "persian", ("fas", "kmr"), ("political_opinion", "religion",
                                                       "sexual_orientation_gender_identity"),
           ("TUR", "GRC"), by_air=0.4, passport=0.6),
    Origin("GEO", 2, 5, 2, "georgian", ("kat", "rus"), ("medical", "economic_hardship", "political_opinion"),
           by_air=0.95, passport=0.9, estimated_birth=0.01),
    Origin("PER", 3, 5, 5, "spanish", ("spa",), ("generalised_violence", "economic_hardship"),
           by_air=0.95, passport=0.9, estimated_birth=0.02),
    Origin("MLI", 1.5, 40, 2, "west_african", ("bam", "fra"), ("armed_conflict", "generalised_violence"),
           ("DZA", "LBY"), by_sea=0.8, passport=0.15, estimated_birth=0.5),
    Origin("CIV", 1.5, 20, 2, "west_african", ("fra",), ("political_opinion", "particular_social_group", "gender"),
           ("TUN",), by_sea=0.8, passport=0.4, estimated_birth=0.2),
    Origin("TUN", 1, 5, 2, "arabic", ("aeb", "ara", "fra"), ("economic_hardship", "political_opinion"),
           by_sea=0.8, passport=0.5),
)
ORIGIN_BY_CODE = {origin.code: origin for origin in ORIGINS}
# Shares of all first-time applicants that STATISTICS.md states (2024). The other origins above
# stand for every nationality not listed as well, so they share the rest in proportion: without
# this the listed 80.5% would be read as 100% and Syrians would be a fifth of the caseload.
STATED_SHARES = {"SYR": 16.0, "VEN": 8.0, "AFG": 8.0}
# Unaccompanied minors, 2024: Syria 32%, Afghanistan 16%, Egypt 8%, Somalia 7%, Guinea 4%; the rest
# spread like the other applicants (here: the remaining 33% over every other origin).
UAM_SHARES = {"SYR": 32, "AFG": 16, "EGY": 8, "SOM": 7, "GIN": 4}

# Households: (kind, weight). About 1.4 people per case: a quarter children, about 4% unaccompanied
# minors, about a third men aged 18-34 (STATISTICS.md "People").
HOUSEHOLDS = (("single_man", 56), ("single_woman", 10), ("couple", 4), ("couple_children", 7),
              ("mother_children", 4), ("father_children", 1), ("adult_relative", 2), ("unaccompanied_minor", 5.2))
# Where a claim overland is made (by air: inland or an airport transit zone; by sea: disembarked).
OVERLAND = ("inland", "apprehended_irregular_crossing", "border_crossing_point", "relocation")
OVERLAND_CUMULATIVE = (78, 90, 98, 100)
EURODAC_STATES = ("GRC", "BGR", "HRV", "ITA", "HUN", "AUT", "ESP", "MLT", "CYP", "SVN", "ROU")
DESTINATION_STATES = ("DEU", "FRA", "BEL", "NLD", "SWE", "AUT", "ITA", "ESP")
# Days from lodging to the first-instance decision, median per track (lognormal, sigma below):
# the German average was 6.8 months in 2023, and the EU's pending caseload is about one year of
# inflow (918,000 pending, June 2025); accelerated and border cases are quicker, not always in time.
MEDIAN_DAYS_TO_DECISION = {"regular": 330, "regular_prioritised": 240, "accelerated": 120, "border": 70,
                           "border_optional": 75, "responsibility": 100, "inadmissibility": 110}
DAYS_SIGMA = 0.6
# Inflow per calendar month (January first): an autumn peak.
SEASON = (0.9, 0.85, 0.9, 0.9, 0.92, 0.95, 1.0, 1.05, 1.12, 1.2, 1.15, 1.0)
YEARLY_DECLINE = 0.73  # 912k (2024) -> 669k (2025)
APPEAL_SHARE = {"rejected_unfounded": 0.7, "rejected_manifestly_unfounded": 0.6, "inadmissible": 0.5,
                "transfer_decision": 0.3}
APPEAL_OUTCOMES = (("upheld", 65), ("overturned", 27), ("remitted", 8))  # 27% positive on appeal
LEGAL_BASIS = {"refugee_status": ["QR-REFUGEE"], "subsidiary_protection": ["QR-SUBSIDIARY"],
               "humanitarian_status": ["NAT-HUMANITARIAN"], "rejected_unfounded": ["APR-39"],
               "rejected_manifestly_unfounded": ["APR-39-MANIFEST", "APR-42"], "inadmissible": ["APR-38"],
               "transfer_decision": ["AMMR-TRANSFER"]}
ENTRY_PLACES = {"inland": None, "transit_zone": "Airport transit zone", "disembarkation_sar": "Port of disembarkation",
                "relocation": "Relocated from a frontline State", "border_crossing_point": "Border crossing point",
                "apprehended_irregular_crossing": "Green border"}
INTERVIEW_SLOTS = ((8, 30), (10, 30), (13, 30), (15, 30))  # two hours each at most: never overlapping
BOOKING_DAYS_AHEAD = 120  # interviews are booked at most a few weeks after the generation moment

# -- names ---------------------------------------------------------------------------------------------

NAMES: dict[str, dict[str, tuple[str, ...]]] = {}


def _names(group: str, male: str, female: str, family: str) -> None:
    NAMES[group] = {key: tuple(n.strip() for n in text.split(",")) for key, text in
                    (("M", male), ("F", female), ("family", family))}


_names("levant",
       "Mohammed, Ahmad, Ali, Omar, Khaled, Mahmoud, Hassan, Hussein, Youssef, Ibrahim, Abdullah, Mustafa, Rami, "
       "Fadi, Bashar, Samer, Tarek, Walid, Ammar, Anas, Bilal, Hamza, Majd, Karim, Ziad, Yasser, Firas, Osama",
       "Fatima, Aisha, Mariam, Rania, Hala, Lina, Noura, Reem, Amal, Yasmin, Huda, Sara, Rasha, Dima, Salma, "
       "Zainab, Nadia, Layla, Hiba, Ghada",
       "Al-Hassan, Al-Ahmad, Khalil, Haddad, Darwish, Najjar, Saleh, Mansour, Hamdan, Kassem, Othman, Al-Ali, "
       "Al-Khatib, Shami, Halabi, Sabbagh, Jaber, Hamwi, Zoabi, Kurdi, Barakat, Nasser, Hijazi, Al-Rifai, Attar, "
       "Dabbagh, Farhat, Ismail")
_names("arabic",
       "Mohamed, Ahmed, Ali, Omar, Mahmoud, Hassan, Hussein, Youssef, Ibrahim, Abdelrahman, Mustafa, Osman, Adam, "
       "Khalid, Abdallah, Karim, Hamza, Tarek, Amine, Yassine, Haider, Mohanad, Saif, Nabil, Said, Anouar",
       "Fatma, Aisha, Mariam, Amina, Khadija, Salma, Nour, Hanan, Samira, Zainab, Asmaa, Rania, Huda, Iman, "
       "Sanaa, Najat",
       "Abdelrahman, Mohamed, Osman, Ibrahim, Adam, Elsayed, Abdelaziz, Mahmoud, Hassan, Saleh, Al-Jubouri, "
       "Al-Obaidi, Al-Dulaimi, Al-Tamimi, Benali, Bennani, El Idrissi, Alaoui, Trabelsi, Ben Salah, Gharbi, "
       "Mansouri, Abdallah, Salem, Farouk, Ismail, Hamdi, Nour")
_names("afghan",
       "Ahmad, Mohammad, Ali, Reza, Hamid, Farid, Jawad, Naveed, Sayed, Mustafa, Rahim, Karim, Nasir, Wahid, "
       "Zabihullah, Najibullah, Hekmatullah, Abdul Wali, Rahmatullah, Samiullah, Shafiq, Habib, Idris, Javid, "
       "Yama, Omid, Bilal, Hussain",
       "Fatima, Zahra, Maryam, Zarghona, Parwana, Nargis, Shabana, Freshta, Madina, Mursal, Sima, Gulalai, Laila, "
       "Hasina, Nilofar, Shakila, Tahmina, Roya, Mahbooba, Soraya",
       "Ahmadi, Rahimi, Hakimi, Karimi, Sultani, Mohammadi, Hussaini, Noori, Stanekzai, Popal, Wardak, Safi, "
       "Sadat, Amiri, Jalali, Azizi, Hashimi, Rasuli, Haidari, Nazari, Yousufzai, Mangal, Niazi, Barakzai, "
       "Shinwari, Akbari, Faizi, Qaderi")
_names("spanish",
       "José, Luis, Carlos, Juan, Jesús, Miguel Ángel, Andrés, Daniel, David, Alejandro, Jorge, Pedro, Rafael, "
       "Ricardo, Fernando, Javier, Manuel, Víctor, Óscar, Gabriel, Diego, Eduardo, Héctor, Wilmer, Yorman, Jhon, "
       "Edwin, Brayan, Anderson",
       "María José, Ana, Carmen, Yolanda, Luisa, Daniela, Gabriela, Andrea, Paola, Carolina, Valentina, Mariana, "
       "Yusleidy, Yeimy, Leidy, Patricia, Rosa, Milagros, Marisol, Karina",
       "González, Rodríguez, Pérez, Hernández, García, Martínez, López, Sánchez, Ramírez, Torres, Flores, Rivera, "
       "Gómez, Díaz, Morales, Rojas, Castillo, Vargas, Romero, Mendoza, Medina, Guerrero, Suárez, Herrera, Castro, "
       "Ortiz, Gutiérrez, Chávez, Silva, Ramos")
_names("turkish",
       "Mehmet, Mustafa, Ahmet, Ali, Hüseyin, Hasan, İbrahim, İsmail, Osman, Yusuf, Murat, Ömer, Ramazan, Halil, "
       "Süleyman, Mahmut, Recep, Kemal, Serkan, Emre, Burak, Fatih, Deniz, Baran, Rojhat, Welat, Agit, Diyar",
       "Fatma, Ayşe, Emine, Hatice, Zeynep, Elif, Meryem, Şerife, Sultan, Hanife, Berfin, Rojda, Zilan, Dilan, "
       "Nurhan, Gülsüm, Derya, Esra, Özlem, Songül",
       "Yılmaz, Kaya, Demir, Şahin, Çelik, Yıldız, Yıldırım, Öztürk, Aydın, Özdemir, Arslan, Doğan, Kılıç, Aslan, "
       "Çetin, Kara, Koç, Kurt, Özkan, Şimşek, Polat, Korkmaz, Altun, Tekin, Aksoy, Ekinci, Kaplan, Bozkurt")
_names("bengali",
       "Md Rubel, Md Sohel, Abdul Karim, Mohammad Ali, Rahim, Alam, Kamal, Jamal, Rafiq, Shahid, Sumon, Jahangir, "
       "Masud, Habib, Anwar, Nazrul, Faruk, Shakil, Riyad, Tanvir, Arif, Mizanur, Mahbub, Saiful, Shafiqul, Monir",
       "Fatema, Nasrin, Shirin, Rokeya, Sharmin, Taslima, Rumana, Nusrat, Farzana, Sabina, Ayesha, Jesmin, "
       "Shamima, Rehana, Sultana, Shapla, Mousumi, Nargis",
       "Hossain, Rahman, Islam, Ahmed, Uddin, Miah, Khan, Chowdhury, Sarker, Talukder, Mollah, Sheikh, Bhuiyan, "
       "Hasan, Alam, Kabir, Mahmud, Haque, Siddique, Das, Roy, Biswas, Mondal, Howlader, Sikder, Majumder")
_names("pakistani",
       "Muhammad, Ali, Ahmed, Hassan, Usman, Bilal, Imran, Kamran, Faisal, Asif, Zeeshan, Waqas, Adnan, Shahzad, "
       "Tariq, Naveed, Irfan, Arslan, Hamza, Umar, Saad, Junaid, Sajid, Rizwan, Nadeem, Waseem, Shoaib, Fahad",
       "Ayesha, Fatima, Sana, Hina, Saima, Nida, Rabia, Mehwish, Sadia, Bushra, Amna, Iqra, Maryam, Zainab, Asma, "
       "Shazia, Nazia, Rukhsana, Samina, Uzma",
       "Khan, Ahmed, Ali, Hussain, Shah, Butt, Malik, Qureshi, Chaudhry, Raja, Iqbal, Javed, Anwar, Akhtar, Rana, "
       "Mirza, Sheikh, Baig, Abbasi, Awan, Bhatti, Cheema, Gondal, Rehman, Siddiqui, Zafar, Mughal, Afridi")
_names("west_african",
       "Mamadou, Ibrahima, Alpha, Abdoulaye, Ousmane, Amadou, Mohamed, Boubacar, Souleymane, Thierno, Sekou, "
       "Lansana, Mamadi, Moussa, Oumar, Alseny, Saliou, Aboubacar, Fode, Kerfalla, Aliou, Daouda, Seydou, Lamine, "
       "Karamoko, Bakary, Sidiki, Modibo",
       "Fatoumata, Mariama, Aissatou, Kadiatou, Hawa, Aminata, Mariame, Fanta, Djenabou, Oumou, Binta, "
       "Ramatoulaye, Nènè, Saran, Mabinty, Fatou, Awa, Sira, Kadija",
       "Diallo, Barry, Bah, Sow, Camara, Condé, Touré, Keita, Sylla, Traoré, Kaba, Kouyaté, Cissé, Soumah, Baldé, "
       "Doumbouya, Konaté, Fofana, Bangoura, Kourouma, Diakité, Coulibaly, Sangaré, Koné, Ouattara, Dembélé, "
       "Sidibé, Diarra")
_names("somali",
       "Abdi, Mohamed, Ahmed, Hassan, Abdirahman, Abdullahi, Ali, Omar, Yusuf, Ibrahim, Abdikadir, Farah, Hussein, "
       "Mahad, Liban, Mustafe, Bashir, Said, Abdiaziz, Guled",
       "Fadumo, Hodan, Amina, Asha, Halimo, Sahra, Hawa, Ifrah, Nimco, Ubah, Ayaan, Maryan, Sagal, Khadra, Deqa, "
       "Hibo, Muna, Safiya, Ikran",
       "Mohamed, Ahmed, Hassan, Ali, Abdi, Farah, Warsame, Jama, Nur, Hussein, Ismail, Osman, Yusuf, Abdullahi, "
       "Egal, Omar, Aden, Dahir, Elmi, Gedi, Hersi, Mohamud, Shire, Samatar")
_names("tigrinya",
       "Tesfaye, Yonas, Dawit, Filmon, Robel, Amanuel, Merhawi, Henok, Samuel, Habtom, Kibrom, Berhane, Yohannes, "
       "Mulugeta, Tekle, Biniam, Natnael, Efrem, Mussie, Senai",
       "Helen, Selam, Saba, Senait, Luwam, Rahel, Tsega, Yohana, Aster, Merhawit, Feven, Semhar, Hiwet, Almaz, "
       "Winta, Nardos, Mebrat, Tirhas, Azeb, Freweyni",
       "Tesfamariam, Gebremedhin, Haile, Kidane, Tekle, Berhe, Woldu, Ghebremichael, Mehari, Asmerom, Tewelde, "
       "Habte, Gebrehiwet, Yemane, Kahsay, Abraha, Okbay, Fitsum, Negash, Ghirmay, Andemariam, Zerai")
_names("persian",
       "Mohammad, Ali, Reza, Hossein, Mehdi, Amir, Saeed, Hamid, Javad, Mahmoud, Majid, Omid, Babak, Arash, "
       "Farhad, Kaveh, Navid, Pouya, Sina, Behzad",
       "Fatemeh, Zahra, Maryam, Narges, Sara, Leila, Mahsa, Nazanin, Shirin, Parisa, Azadeh, Niloufar, Roya, "
       "Elham, Somayeh, Mina, Samira, Golnaz, Ladan, Shiva",
       "Mohammadi, Hosseini, Ahmadi, Rezaei, Moradi, Karimi, Jafari, Hashemi, Rahimi, Sadeghi, Mousavi, Ghasemi, "
       "Kazemi, Ebrahimi, Najafi, Rostami, Shahbazi, Tavakoli, Yazdani, Farahani")
_names("georgian",
       "Giorgi, Davit, Levan, Irakli, Nikoloz, Zurab, Lasha, Mikheil, Aleksandre, Tornike, Gela, Beka, Shota, "
       "Vakhtang, Luka",
       "Nino, Tamar, Mariam, Ana, Ketevan, Natia, Eka, Salome, Maia, Tinatin, Sophio, Nana, Lela, Khatia, Manana",
       "Beridze, Kapanadze, Gelashvili, Maisuradze, Giorgadze, Lomidze, Tsiklauri, Bolkvadze, Kvaratskhelia, "
       "Nozadze, Chkheidze, Abashidze, Khutsishvili, Janelidze, Japaridze, Mikeladze")
_names("ukrainian",
       "Oleksandr, Andrii, Serhii, Volodymyr, Dmytro, Mykola, Ivan, Yurii, Vasyl, Oleh, Taras, Bohdan, Maksym, "
       "Roman, Vitalii",
       "Olena, Tetiana, Nataliia, Iryna, Oksana, Yuliia, Svitlana, Liudmyla, Mariia, Kateryna, Anastasiia, "
       "Halyna, Viktoriia, Alina, Daryna",
       "Melnyk, Shevchenko, Kovalenko, Bondarenko, Tkachenko, Kravchenko, Kovalchuk, Oliinyk, Shevchuk, "
       "Polishchuk, Boiko, Tkachuk, Savchenko, Rudenko, Marchenko, Lysenko, Moroz, Pavlenko, Kuzmenko")
_names("nigerian",
       "Chinedu, Emeka, Oluwaseun, Tunde, Ibrahim, Musa, Yusuf, Chukwuemeka, Obinna, Kelechi, Femi, Segun, "
       "Adebayo, Abubakar, Uchenna, Ifeanyi, Babatunde, Olumide, Nnamdi, Sani",
       "Chioma, Ngozi, Funmilayo, Aisha, Blessing, Esther, Adaeze, Folake, Amaka, Zainab, Oluwakemi, Precious, "
       "Joy, Ifeoma, Halima, Yetunde, Nkechi, Bisola, Hauwa, Gift",
       "Okafor, Okonkwo, Adeyemi, Ogunleye, Eze, Nwosu, Bello, Abubakar, Olawale, Chukwu, Okeke, Balogun, "
       "Ibrahim, Obi, Nwachukwu, Akinola, Umar")
# Other spellings the same person is registered under (transliteration): the aliases.
SPELLINGS = {
    "Mohammed": ("Muhammad", "Mohamad", "Mohamed"), "Mohamed": ("Mohammed", "Muhammad"),
    "Mohammad": ("Muhammad", "Mohamad"), "Muhammad": ("Mohammad", "Mohammed"), "Ahmad": ("Ahmed",),
    "Ahmed": ("Ahmad",), "Hussein": ("Husain", "Hussain"), "Hussain": ("Hussein",), "Youssef": ("Yusuf", "Yousef"),
    "Yusuf": ("Youssef",), "Mustafa": ("Mostafa", "Moustafa"), "Omar": ("Umar",), "Khaled": ("Khalid",),
    "Mahmoud": ("Mahmud",), "Abdullah": ("Abdallah",), "Ibrahim": ("Ebrahim",), "Hassan": ("Hasan",),
    "Osama": ("Usama",), "Fatima": ("Fatma", "Fatemeh"), "Aisha": ("Aysha", "Ayesha"), "Mariam": ("Maryam",),
    "Zainab": ("Zeynab",), "Al-Hassan": ("Alhassan", "El Hassan"), "Al-Ahmad": ("Alahmad",), "Khalil": ("Khaleel",),
    "Ahmadi": ("Ahmady",), "Rahimi": ("Rahimy",), "Hussaini": ("Hosseini",), "Noori": ("Nuri",),
    "Abdelrahman": ("Abdel Rahman", "Abdulrahman"), "Ousmane": ("Usman",), "Mamadou": ("Mamadu",),
    "Diallo": ("Jallow",), "Tesfaye": ("Tesfay",), "Gebremedhin": ("Gebre Medhin",), "Mohamud": ("Mahmoud",),
}
STAFF_NAMES = (
    "Anna Kowalska, Lukas Becker, Sofia Rossi, Jan de Vries, Marta García, Elena Popescu, Thomas Dubois, "
    "Ingrid Larsen, Pieter Janssens, Katarzyna Nowak, Matteo Bianchi, Eva Novák, Lea Schmidt, Hugo Martin, "
    "Clara Fischer, Jonas Petersen, Laura Moreau, Mikael Virtanen, Zuzana Horváth, Nikos Papadopoulos, "
    "Inês Costa, Tomás Ferreira, Aoife Murphy, Karin Lindqvist, Daniel Weber, Julia Wagner, Petra Kovač, "
    "Marek Dvořák, Sara Lindgren, Luca Romano, Amelie Roux, Oskar Nilsson, Helena Silva, Felix Hoffmann"
).split(", ")
STREETS = ("Station Road", "Harbour Street", "Church Lane", "Mill Road", "Park Avenue", "Market Square",
           "School Street", "Bridge Road", "Garden Lane", "North Street")
STATEMENTS = {
    "political_opinion": ("I was detained after taking part in a demonstration and questioned about the opposition.",
                          "Security officers came to our house twice looking for me because of my political work."),
    "religion": ("I was threatened because I converted and stopped attending the mosque.",
                 "Our community was attacked because of our faith; my uncle was killed."),
    "generalised_violence": ("Our neighbourhood was shelled for months and there was nowhere safe left.",
                             "Armed groups control the roads; my cousin was killed at a checkpoint."),
    "armed_conflict": ("The fighting reached our town and our house was destroyed.",
                       "Both sides recruited young men by force; I fled before they took me."),
    "military_service": ("I was called up for indefinite military service and refused to serve.",
                         "I deserted after being ordered to fire on civilians."),
    "particular_social_group": ("A gang demanded money from my family and threatened to kill my son.",
                                "My family wanted me to marry a man I did not choose; I ran away."),
    "gender": ("I was forced into a marriage and beaten; the police would not help.",
               "I fear my daughter will be cut if we return."),
    "nationality": ("As a Kurd I was prosecuted for speaking about our rights.",),
    "race": ("Militias attacked our village because of our ethnic group.",),
    "economic_hardship": ("I lost my work and could not feed my family; prices rose every week.",),
    "sexual_orientation_gender_identity": ("I was arrested and beaten when my relationship with another man "
                                           "became known.",),
    "medical": ("I need treatment that is not available at home.",),
}
SECURITY_BASIS = "Hit in a security database consultation; details held by the security service."
WITHDRAWAL_REASONS = ("The applicant withdrew the application in writing.",
                      "The applicant left for another country and withdrew the claim.")
IMPLICIT_WITHDRAWAL_REASON = "Not lodged within 21 days of registration and no good cause shown (APR 41)."
RETURN_COMMENTS = ("Please address the credibility findings on the dates given at the interview.",
                   "The assessment of the internal protection alternative is missing.",
                   "Please add the country of origin information relied on.")


# -- the public API ------------------------------------------------------------------------------------

@dataclass
class GenerationReport:
    """What ``generate_caseload`` wrote, and how fast."""

    seed: int
    cases: int = 0
    persons: int = 0
    decisions: int = 0
    events: int = 0
    seconds: float = 0.0
    staff_created: int = 0
    rates_imported: bool = False
    tracks: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    rechained: int = 0  # batches chained again because another writer appended events meanwhile

    @property
    def cases_per_second(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


class GenerationRefused(Exception):
    """The generator refuses: wrong environment, unknown office, no (usable) encryption keys."""


def case_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Case)) or 0


def ensure_demo_users() -> list[str]:
    """Create the demo offices and accounts (app/demo.py) when any is missing; returns the
    sign-in lines to print, or [] when they all exist (their passwords are then left alone)."""
    names = [account[0] for account in DEMO_ACCOUNTS]
    found = set(db.session.scalars(select(User.username).where(User.username.in_(names))))
    offices = set(db.session.scalars(select(Office.code).where(Office.code.in_([c for c, _ in DEMO_OFFICES]))))
    if found == set(names) and offices == {code for code, _ in DEMO_OFFICES}:
        return []
    return create_demo_users()


def generate_caseload(count: int, *, seed: int, office_codes: Sequence[str] | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE, on_batch: Callable[[int], None] | None = None,
                      now: datetime | None = None, pipeline: bool | None = None) -> GenerationReport:
    """Generate ``count`` cases over the last two years into the current application's database.

    Development and testing only (GenerationRefused otherwise). Needs migrated tables, keys and
    the offices named by ``office_codes`` (default: the demo offices, which ``ensure_demo_users``
    creates). Imports the shipped recognition rates when the table is empty, activates the
    shipped ruleset when none is active, adds generated staff (caseworkers, supervisors,
    registration officers who cannot sign in) where an office has too few for ``count`` cases,
    then writes at most ``batch_size`` cases per transaction, calling ``on_batch(n)`` after each (the
    next batches are prepared in a second process meanwhile, see ``_batches``). Ends with one
    BULK_IMPORT audit event naming the seed and the counts."""
    if current_app.config.get("ENVIRONMENT") not in ENVIRONMENTS:
        raise GenerationRefused("demo data is generated only in development or testing")
    if db.engine.dialect.name not in DIALECTS:
        raise GenerationRefused(f"demo data is generated into {' or '.join(DIALECTS)} only")
    try:
        crypto.keyring().refresh()
    except crypto.KeyConfigurationError as error:
        raise GenerationRefused(str(error)) from None
    started = clock.perf_counter()
    now = now or datetime.now(UTC)
    report = GenerationReport(seed=seed)
    report.rates_imported = _ensure_recognition_rates()
    state = triage_services.writable_state()  # stores and activates the shipped ruleset if needed
    db.session.commit()
    offices = _load_offices(office_codes or [code for code, _ in DEMO_OFFICES])
    report.staff_created = _ensure_staff(offices, count, seed)
    db.session.commit()  # SQLite: no transaction of the session may hold the write lock meanwhile
    world = _World(seed=seed, now=now, state=state, offices=offices)
    days = _registration_days(seed, count, now.date())
    chain = _chain_head()
    with _run_caches(), _collector_paused(), _storage() as connection:
        for batch in _batches(world, days, count, batch_size, pipeline):
            chain, rechained = _store(connection, batch, chain)
            report.rechained += rechained
            report.cases += batch.cases
            report.persons += batch.persons
            report.decisions += batch.decisions
            report.events += len(batch.events)
            for name, counts in ((report.tracks, batch.tracks), (report.statuses, batch.statuses)):
                for key, n in counts.items():
                    name[key] = name.get(key, 0) + n
            if on_batch:
                on_batch(batch.cases)
            del batch  # before the next one arrives: at most PIPELINE_DEPTH + 1 batches in memory
    record(EventCode.BULK_IMPORT, actor=None, subject=("demo_data", str(seed)),
           details={"source": "flask demo generate", "seed": seed, "cases": report.cases,
                    "persons": report.persons, "events": report.events, "as_of": now.isoformat()})
    db.session.commit()
    report.seconds = clock.perf_counter() - started
    return report


# -- preparation ---------------------------------------------------------------------------------------

def _chain_head() -> tuple[int, bytes]:
    """(seq, hash) of the audit chain head now, read without taking SQLite's write lock: each
    batch's events are chained after the head before its transaction, then checked under the
    lock (see ``_store``)."""
    table = AuditChainHead.__table__
    with db.engine.connect().execution_options(read_only=True) as conn:
        head = conn.execute(select(table.c.seq, table.c.hash).where(table.c.id == 1)).one()
    return head.seq, bytes(head.hash)


def _ensure_recognition_rates() -> bool:
    """Import the shipped recognition-rate CSV (audited like a supervisor's import, actor the
    system) when the table is empty. True when imported."""
    if db.session.scalar(select(func.count()).select_from(RecognitionRate)):
        return False
    triage_services.import_recognition_rates(RATES_CSV.read_bytes(), acting_user=None)
    return True


@dataclass(frozen=True)
class _Staff:
    id: int
    role: str


@dataclass
class _Office:
    id: int
    code: str
    name: str
    weight: float
    registrars: list[_Staff] = field(default_factory=list)
    caseworkers: list[_Staff] = field(default_factory=list)
    supervisors: list[_Staff] = field(default_factory=list)


def _load_offices(codes: Sequence[str]) -> list[_Office]:
    rows = {o.code: o for o in db.session.scalars(select(Office).where(Office.code.in_(list(codes))))}
    missing = [code for code in codes if code not in rows]
    if missing:
        raise GenerationRefused(f"no office with code {', '.join(missing)}")
    # The first office (headquarters) registers the most: weights 2, 1, 1, ...
    return [_Office(rows[code].id, code, rows[code].name, 2.0 if i == 0 else 1.0)
            for i, code in enumerate(dict.fromkeys(codes))]


def _ensure_staff(offices: list[_Office], count: int, seed: int) -> int:
    """Fill each office's registration officers, caseworkers and supervisors up to what ``count``
    cases need (existing active accounts count); new ones are generated accounts that cannot
    sign in, each audited USER_CREATED. Returns how many were created."""
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - demo data, not secrets
    total_weight = sum(o.weight for o in offices)
    created = 0
    for office in offices:
        share = count * office.weight / total_weight
        caseworkers = min(MAX_CASEWORKERS_PER_OFFICE, max(2, math.ceil(share / CASES_PER_CASEWORKER)))
        wanted = {Role.CASEWORKER.value: caseworkers,
                  Role.SUPERVISOR.value: max(1, caseworkers // 8),
                  Role.REGISTRATION_OFFICER.value: max(1, min(20, math.ceil(share / 5000)))}
        existing = db.session.execute(select(User.id, User.role).where(
            User.office_id == office.id, User.active.is_(True), User.role.in_(list(wanted))).order_by(User.id)).all()
        pools = {role: [_Staff(row.id, row.role) for row in existing if row.role == role] for role in wanted}
        for role, target in wanted.items():
            number = 0
            while len(pools[role]) < target:
                number += 1
                username = f"gen.{office.code.lower()}.{role.split('_')[0][:3]}{number:03d}"
                if db.session.scalar(select(User.id).where(User.username == username)) is not None:
                    continue  # already in the pool when active here, else not ours to use
                user = User(username=username, full_name=rng.choice(STAFF_NAMES), role=role, office_id=office.id,
                            password_hash=GENERATED_PASSWORD_HASH, active=True)
                db.session.add(user)
                db.session.flush()
                record(EventCode.USER_CREATED, actor=None, subject=("user", user.id),
                       details={"role": role, "office_id": office.id, "via": "cli", "generated": True})
                created += 1
                pools[role].append(_Staff(user.id, role))
        office.registrars = pools[Role.REGISTRATION_OFFICER.value]
        office.caseworkers = pools[Role.CASEWORKER.value]
        office.supervisors = pools[Role.SUPERVISOR.value]
    return created


@contextmanager
def _run_caches():
    """Caches that live for one run only.

    * ``matching._tokens`` (name transliteration, about 80% of ``match_keys``' time) is a pure
      function of one name and generated names repeat: memoised, it changes no key, only the
      speed (five times faster). Restored afterwards; the application itself is untouched.
    * ``_token`` (blind indexes) depends on the database's index key: emptied before and after,
      so a process that generates into two databases never mixes their tokens."""
    original = matching._tokens
    matching._tokens = lru_cache(maxsize=65536)(original)
    _token.cache_clear()
    _INDEXERS.clear()
    try:
        yield
    finally:
        matching._tokens = original
        _token.cache_clear()
        _INDEXERS.clear()


@contextmanager
def _collector_paused():
    """No cyclic garbage collection while batches are built: they are millions of small acyclic
    dicts and lists, which the collector would walk again and again for nothing (10-30% of the
    time). One collection at the end; the previous setting is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


_INDEXERS: dict[tuple[str, bool], Callable[[str], bytes | None]] = {}


@lru_cache(maxsize=1 << 18)
def _token(value: str, purpose: str, normalise: bool = True) -> bytes:
    """``crypto.blind_index(value, purpose, normalise=normalise)``, memoised for one run (see
    ``_run_caches``): names, dates and match keys repeat across generated people. Through
    ``crypto.blind_indexer`` where there is one (the key looked up once per purpose)."""
    index = _INDEXERS.get((purpose, normalise))
    if index is None:
        make = getattr(crypto, "blind_indexer", None)
        index = _INDEXERS[(purpose, normalise)] = make(purpose, normalise=normalise) if make else \
            partial(crypto.blind_index, purpose=purpose, normalise=normalise)
    return index(value)


def _registration_days(seed: int, count: int, today: date) -> array:
    """``count`` registration days (ordinals, sorted) over the last HISTORY_DAYS days: monthly
    inflow with the seasonal factors, falling by YEARLY_DECLINE a year, on working days."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    first = today - timedelta(days=HISTORY_DAYS)
    days = [first + timedelta(days=n) for n in range(HISTORY_DAYS) if (first + timedelta(days=n)).weekday() < 5]
    weights = [SEASON[d.month - 1] * YEARLY_DECLINE ** ((d - today).days / 365) for d in days]
    cumulative = list(_accumulate(weights))
    chosen = array("l", sorted(days[bisect.bisect(cumulative, rng.random() * cumulative[-1])].toordinal()
                               for _ in range(count)))
    return chosen


def _accumulate(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


# -- the world of one run --------------------------------------------------------------------------

class _World:
    """Everything the cases of one run share: the clock, the triage state and context, the
    offices and staff, the weighted choices, and the interview bookings."""

    def __init__(self, *, seed: int, now: datetime, state, offices: list[_Office]):
        self.seed = seed
        self.now = now
        self.today = now.date()
        self.state = state
        self.ruleset = state.active.ruleset
        self.label = state.active.label
        self.base_context = dict(state.context)
        self.dated = "decision_date" in state.active.context_specs
        self.offices = offices
        self.office_weights = list(_accumulate(o.weight for o in offices))
        self.origins = ORIGINS
        unstated = sum(o.share for o in ORIGINS if o.code not in STATED_SHARES)
        scale = (100 - sum(STATED_SHARES.values())) / unstated
        self.origin_weights = list(_accumulate(STATED_SHARES.get(o.code, o.share * scale) for o in ORIGINS))
        rest = sum(o.share for o in ORIGINS if o.code not in UAM_SHARES)
        remaining = 100 - sum(UAM_SHARES.values())
        self.uam_weights = list(_accumulate(UAM_SHARES.get(o.code, o.share * remaining / rest) for o in ORIGINS))
        self.households = [h for h, _ in HOUSEHOLDS]
        self.household_weights = list(_accumulate(w for _, w in HOUSEHOLDS))
        config = current_app.config
        self.appeal_rules = config.get("DECISION_APPEAL_RULES")
        self.suspensive_rules = config.get("DECISION_SUSPENSIVE_RULES")
        # Interview slots taken: per interviewer, one byte per day (a bitmask of INTERVIEW_SLOTS)
        # from the first possible registration day on; a fixed size per interviewer, however many
        # cases, so memory does not grow with N.
        self.first_day = self.today.toordinal() - HISTORY_DAYS
        self.bookings: dict[int, bytearray] = {}
        self.references = _SeenFilter()

    def evaluate(self, facts: dict, day: date):
        """The engine's result for ``facts`` triaged on ``day`` (the context's decision_date,
        when the ruleset has one: both shipped rulesets do)."""
        if not self.dated:
            return self.ruleset.evaluate(facts, self.base_context)
        return self.ruleset.evaluate(facts, {**self.base_context, "decision_date": day})

    def appeal_terms(self, track: str | None, outcome: str):
        return decision_settings.appeal_terms(track, outcome, appeal_rules=self.appeal_rules,
                                              suspensive_rules=self.suspensive_rules)

    def book_interview(self, interviewer_id: int, day: date, rng: random.Random) -> datetime:
        """A free slot of the interviewer on ``day`` or the next working days (never two
        interviews of one interviewer at once, as scheduling refuses)."""
        day = _working_day(day)
        days = self.bookings.get(interviewer_id)
        if days is None:
            days = self.bookings[interviewer_id] = bytearray(HISTORY_DAYS + BOOKING_DAYS_AHEAD)
        while True:
            offset = day.toordinal() - self.first_day
            if offset >= len(days):  # far ahead (a fully booked interviewer): grow, rarely
                days.extend(bytes(offset + 1 - len(days)))
            taken = days[offset]
            free = [n for n in range(len(INTERVIEW_SLOTS)) if not taken & (1 << n)]
            if free:
                slot = rng.choice(free)
                days[offset] = taken | (1 << slot)
                hour, minute = INTERVIEW_SLOTS[slot]
                return datetime.combine(day, time(hour, minute), UTC)
            day = _working_day(day + timedelta(days=1))


def _working_day(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day


def _at(day: date, rng: random.Random, earliest: datetime | None = None) -> datetime:
    """A moment in office hours on ``day`` (never before ``earliest``)."""
    moment = datetime.combine(day, time(8), UTC) + timedelta(seconds=rng.randrange(9 * 3600))
    if earliest is not None and moment <= earliest:
        moment = earliest + timedelta(seconds=rng.randrange(60, 3600))
    return moment


class _Random(random.Random):
    """The stream of one case: ``random.Random`` (Mersenne Twister, seeded, reproducible: demo
    data, not secrets) with ``randint``, ``randrange`` and ``choice`` scaled from one ``random()``
    float instead of the library's rejection sampling on bits, which costs several Python calls
    each and is a sixth of a case's time. The bias (below 2**-40 for these small ranges) does
    not matter here."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None:
            start, stop = 0, start
        return start + int(self.random() * (stop - start))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]


def _pick(rng: random.Random, items: Sequence, cumulative: Sequence[float]):
    return items[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def _chance(rng: random.Random, probability: float) -> bool:
    return rng.random() < probability


# -- one batch ---------------------------------------------------------------------------------------

TABLES = (Case, Person, PersonMatchKey, DocumentNumberIndex, TriageRecord, Interview, Decision, DecisionReview,
          Notification, Appeal)


class _Json:
    """A value to store encrypted as JSON (the model attribute is an EncryptedJSON)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _Text(_Json):
    """A value to store encrypted as text (EncryptedText)."""


# An audit event of a case being simulated: [when, actor (_Staff or None), EventCode, case id,
# details]. A list, not an object: there are millions, and the reference check may edit details.
WHEN, ACTOR, CODE, SUBJECT, DETAILS = range(5)


class _Batch:
    """Rows per table (dicts of column values; encrypted columns still plaintext, wrapped) and
    audit events of the cases being simulated, for one transaction."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {model.__tablename__: [] for model in TABLES}
        self.events: list[list] = []
        self.payloads: list[dict] = []  # one registration payload per case, for the schema check
        self._ids = ""
        self._next_id = 0

    def add(self, table: str, row: dict) -> dict:
        self.rows[table].append(row)
        return row

    def new_id(self) -> str:
        """A primary key like ``crypto.new_row_id``'s: 128 random bits as 32 hex digits, from
        the operating system's CSPRNG. Drawn 256 at a time (one system call instead of one
        ``uuid4`` each); per batch, so a forked producer never repeats its parent's."""
        start = self._next_id
        if start == len(self._ids):
            self._ids, start = os.urandom(16 * 256).hex(), 0
        self._next_id = start + 32
        return self._ids[start:start + 32]


# -- one case ------------------------------------------------------------------------------------------

class _Timeline:
    """The events of one case in order; refuses anything after the generation moment."""

    def __init__(self, world: _World, batch: _Batch, case_id: str):
        self.world, self.batch, self.case_id = world, batch, case_id
        self.last: datetime | None = None

    def happened(self, when: datetime) -> bool:
        return when <= self.world.now

    def event(self, when: datetime, actor: _Staff | None, code: EventCode, details: dict) -> None:
        self.batch.events.append([when, actor, code, self.case_id, details])
        self.last = when if self.last is None or when > self.last else self.last


def _simulate_case(world: _World, index: int, registered_on: date, batch: _Batch) -> None:
    """Everything that happened to case number ``index`` (registered on ``registered_on``) up to
    the generation moment: rows and events appended to ``batch``."""
    rng = _Random((world.seed << 32) | index)
    office = _pick(rng, world.offices, world.office_weights)
    household = _pick(rng, world.households, world.household_weights)
    uam = household == "unaccompanied_minor"
    origin = _pick(rng, world.origins, world.uam_weights if uam else world.origin_weights)
    delay = rng.randint(6, 30) if _chance(rng, 0.08) else rng.choice((0, 0, 0, 0, 1, 1, 2, 3, 4, 5))
    made_on = registered_on - timedelta(days=delay)
    arrival = _arrival(rng, origin, made_on)
    people = _household(rng, origin, household, made_on, world.today, arrival)
    registrar = rng.choice(office.registrars)
    registered_at = _at(registered_on, rng)  # registration days end yesterday: always in the past
    lodging = rng.random()
    if lodging < 0.025:  # never lodged
        lodged_on = None
    elif lodging < 0.85:
        lodged_on = registered_on
    else:
        lodged_on = _working_day(registered_on + timedelta(days=rng.randint(1, 14)))
    lodged_late = lodged_on is not None and lodged_on > registered_on
    case_id = batch.new_id()
    reference = _reference(world, rng, office.code, registered_on)
    line = _Timeline(world, batch, case_id)

    # -- registration
    persons = []
    for position, person in enumerate(people):
        persons.append(_person_row(batch, case_id, position, person, made_on, registered_at))
    payload = _payload(made_on, registered_on, lodged_on if not lodged_late else None, arrival, people, office)
    principal = people[0]
    needs_representative = any(p["family"]["unaccompanied_minor"] and not p["family"]["representative_name"]
                               for p in people)
    case = batch.add("asylum_case", {
        "id": case_id, "reference": reference, "office_id": office.id, "status": "registered",
        "made_on": made_on, "made_place": payload["made_place"], "registered_on": registered_on,
        "lodged_on": None, "good_cause_for_not_lodging": False, "received_by_id": registrar.id,
        "location_context": arrival["location_context"], "authorised_to_enter": arrival["authorised_to_enter"],
        "fulfils_entry_conditions": arrival["fulfils_entry_conditions"],
        "presented_without_delay": arrival["presented_without_delay"],
        "principal_nationality": principal["nationality"]["nationalities"][0],
        "registration_delay_days": delay, "late_registration": delay > LATE_REGISTRATION_DAYS,
        "is_subsequent_application": bool(principal["history"]["previous_applications"]),
        "special_needs_assessment_due": made_on + timedelta(days=SPECIAL_NEEDS_ASSESSMENT_DAYS),
        "representative_due": add_working_days(registered_on, REPRESENTATIVE_WORKING_DAYS)
        if needs_representative else None,
        "arrival": _Json(arrival), "assessment": None, "track": None, "track_overridden": False,
        "statutory_deadline": None, "priority": 0, "triaged_at": None, "ruleset_label": None,
        "assigned_to_id": None, "assigned_at": None, "created_at": registered_at, "updated_at": registered_at,
        "version": 1})
    flags = _flags(delay, people)
    line.event(registered_at, registrar, EventCode.CASE_REGISTERED,
               {"reference": reference, "persons": len(people), "flags": flags})
    facts = _triage(world, line, case, payload, registrar, registered_at, "registration", None)

    # -- lodging (later than registration), or never lodged: implicit withdrawal
    if lodged_late:
        lodged_at = _at(lodged_on, rng, registered_at)
        if not line.happened(lodged_at):
            batch.payloads.append(payload)
            _finish(line, case)
            return
        payload["lodged_on"] = lodged_on.isoformat()
        case["lodged_on"] = lodged_on
        line.event(lodged_at, registrar, EventCode.CASE_UPDATED,
                   {"changed": {"lodged_on": {"old": None, "new": lodged_on.isoformat()}}})
        facts = _triage(world, line, case, payload, registrar, lodged_at, "facts_changed", facts)
    else:
        case["lodged_on"] = lodged_on
    batch.payloads.append(payload)
    if lodged_on is None:
        noticed = _at(_working_day(registered_on + timedelta(days=rng.randint(22, 35))), rng)
        if line.happened(noticed):
            _triage(world, line, case, payload, None, noticed, "manual", facts)
            ended = _at(_working_day(noticed.date() + timedelta(days=rng.randint(1, 20))), rng, noticed)
            if line.happened(ended):
                _transition(line, case, ended, rng.choice(office.supervisors), "implicitly_withdrawn",
                            reason=IMPLICIT_WITHDRAWAL_REASON)
        _finish(line, case)
        return
    _examine(world, rng, line, batch, case, persons, people, office, origin, lodged_on)
    _finish(line, case)


def _flags(delay: int, people: list[dict]) -> list[str]:
    """The registration flags registration records (app.intake.services.registration_flags)."""
    flags = set()
    if delay > LATE_REGISTRATION_DAYS:
        flags.add("late_registration")
    for person in people:
        if person["family"]["unaccompanied_minor"] and not person["family"]["representative_name"]:
            flags.add("unaccompanied_minor_without_representative")
        needs = person["special_needs"]
        if needs["vulnerabilities"] or needs["special_procedural_guarantees_needed"]:
            flags.add("special_needs")
    return sorted(flags)


def _finish(line: _Timeline, case: dict) -> None:
    case["updated_at"] = line.last or case["created_at"]


def _reference(world: _World, rng: random.Random, office_code: str, registered_on: date) -> str:
    while True:
        reference = f"{office_code}-{registered_on.year}-" + "".join(rng.choices(REFERENCE_ALPHABET, k=6))
        if world.references.add(reference):
            return reference


class _SeenFilter:
    """The case references drawn in this run, in fixed memory (a one-hash Bloom filter of 2**26
    bits, 8 MiB, allocated on first use): ``add`` is False when the reference may have been drawn
    already, and the caller draws another. A false alarm (about 1.5% at a million cases) only
    costs a redraw; a real repeat is never missed. CRC-32, not ``hash()``: the same seed must
    give the same redraws in every process (``hash`` of a str is salted per interpreter)."""

    BITS = 1 << 26

    def __init__(self):
        self.bits: bytearray | None = None

    def add(self, value: str) -> bool:
        if self.bits is None:
            self.bits = bytearray(self.BITS // 8)
        position = zlib.crc32(value.encode()) & (self.BITS - 1)
        byte, bit = position >> 3, 1 << (position & 7)
        if self.bits[byte] & bit:
            return False
        self.bits[byte] |= bit
        return True


def _triage(world: _World, line: _Timeline, case: dict, payload: dict, actor: _Staff | None, when: datetime,
            trigger: str, before: dict | None) -> dict:
    """Triage as app.triage.services.triage_case does, on the day ``when`` (the engine's
    decision_date): a TriageRecord, the case's track, deadline and priority, CASE_TRIAGED (and
    TRACK_CHANGED when the track changes). Returns the facts."""
    facts = case_facts(payload, None, world.state.reference)
    result = world.evaluate(facts, when.date())
    record_id = line.batch.new_id()
    deadline = date.fromisoformat(result.deadline.date) if result.deadline else None
    line.batch.add("triage_record", {
        "id": record_id, "case_id": case["id"], "ruleset_label": world.label, "track": result.track,
        "deadline": deadline, "deadline_description": result.deadline.description[:200] if result.deadline else None,
        "trigger": trigger, "grounds": _Json(triage_services.grounds_blob(result)), "facts": _Json(facts),
        "created_at": when, "created_by_id": actor.id if actor else None})
    old_track = case["track"]
    case.update(track=result.track, statutory_deadline=deadline,
                priority=triage_services.priority_for(result.track, facts), triaged_at=when,
                ruleset_label=world.label)
    details = {"trigger": trigger, "ruleset": world.label, "track": result.track,
               "grounds": [g.code for g in result.grounds], "deadline": deadline.isoformat() if deadline else None,
               "record": record_id, "overridden": False}
    if before is not None:
        read = (set(result.facts_used) | set(world.evaluate(before, when.date()).facts_used)) - set(REFERENCE_FACTS)
        changed = changed_facts(before, facts, read)
        if changed:
            details["facts_changed"] = changed
    line.event(when, actor, EventCode.CASE_TRIAGED, details)
    if old_track is not None and old_track != result.track:
        line.event(when, actor, EventCode.TRACK_CHANGED,
                   {"old": old_track, "new": result.track, "trigger": trigger, "ruleset": world.label})
    return facts


def _transition(line: _Timeline, case: dict, when: datetime, actor: _Staff, target: str, *,
                reason: str | None = None, automatic: bool = False) -> None:
    details = {"from": case["status"], "to": target, **({"automatic": True} if automatic else {})}
    if reason:
        details["reason"] = reason
    case["status"] = target
    case["version"] += 1
    line.event(when, actor, EventCode.CASE_TRANSITION, details)


def _outcome(rng: random.Random, origin: Origin, track: str) -> str:
    """A first-instance outcome: procedural for the inadmissibility and responsibility tracks
    (mostly), otherwise on the merits with the nationality's recognition rate."""
    if track == "inadmissibility" and _chance(rng, 0.85):
        return "inadmissible"
    if track == "responsibility" and _chance(rng, 0.6):
        return "transfer_decision"
    x = rng.random() * 100
    if x < origin.protection:
        # Of grants, refugee status 42.4% and subsidiary protection 38.8% (STATISTICS.md).
        return "refugee_status" if rng.random() < 0.52 else "subsidiary_protection"
    if x < origin.protection + origin.humanitarian:
        return "humanitarian_status"
    manifest = 0.6 if track in ("accelerated", "border", "border_optional") else 0.15
    return "rejected_manifestly_unfounded" if _chance(rng, manifest) else "rejected_unfounded"


def _examine(world: _World, rng: random.Random, line: _Timeline, batch: _Batch, case: dict, persons: list[dict],
             people: list[dict], office: _Office, origin: Origin, lodged_on: date) -> None:
    """Assignment, interview, decisions, review, issue, service, appeals and closure, each when
    it falls due, stopping at the generation moment; withdrawal on the way for a few."""
    track = case["track"]
    median = MEDIAN_DAYS_TO_DECISION.get(track, MEDIAN_DAYS_TO_DECISION["regular"])
    total = max(21, int(rng.lognormvariate(math.log(median), DAYS_SIGMA)))
    start = max(lodged_on, case["registered_on"])
    # The day of each step as a share of the time to decision: assigned, interview booked,
    # drafted, submitted, approved; then issued on the last day.
    shares = (rng.uniform(0.03, 0.3), rng.uniform(0.3, 0.45), rng.uniform(0.7, 0.85), rng.uniform(0.86, 0.93),
              rng.uniform(0.94, 0.99), 1.0)
    day = [_working_day(start + timedelta(days=max(1, int(total * share)))) for share in shares]
    withdraw_at = None
    if _chance(rng, 0.04):
        withdraw_at = _at(_working_day(start + timedelta(days=rng.randint(7, total))), rng)

    def stop(when: datetime) -> bool:
        """True when the case is withdrawn before ``when``, or ``when`` has not come yet."""
        if withdraw_at is not None and withdraw_at <= when and line.happened(withdraw_at):
            actor = _staff(case, office) or rng.choice(office.supervisors)
            _transition(line, case, max(withdraw_at, line.last), actor, "withdrawn",
                        reason=rng.choice(WITHDRAWAL_REASONS))
            return True
        return not line.happened(when)

    # -- assignment (taken from the queue by a caseworker, or assigned by a supervisor)
    caseworker = rng.choice(office.caseworkers)
    supervisor = rng.choice(office.supervisors)
    assigned_at = _at(day[0], rng, line.last)
    if stop(assigned_at):
        return
    by_supervisor = _chance(rng, 0.3)
    case.update(assigned_to_id=caseworker.id, assigned_at=assigned_at, status="assigned")
    case["version"] += 1
    line.event(assigned_at, supervisor if by_supervisor else caseworker, EventCode.CASE_ASSIGNED,
               {"how": "assign" if by_supervisor else "take_next", "old_assignee": None,
                "new_assignee": caseworker.id})

    # -- interview of the principal (once more when the first was missed with an excuse)
    principal = persons[0]
    language = people[0]["language"]
    attended_at = None
    for attempt in range(2):
        scheduled_at = _at(day[1] if attempt == 0 else line.last.date() + timedelta(days=1), rng, line.last)
        if stop(scheduled_at):
            return
        starts_at = world.book_interview(caseworker.id, scheduled_at.date() + timedelta(days=rng.randint(7, 21)), rng)
        duration = rng.choice((60, 90, 120))
        interview = batch.add("interview", {
            "id": batch.new_id(), "case_id": case["id"], "person_id": principal["id"], "interviewer_id": caseworker.id,
            "round": 1, "starts_at": starts_at, "ends_at": starts_at + timedelta(minutes=duration),
            "duration_minutes": duration, "remote": False, "place": None,
            "interpreter_language": language["preferred_language"] if language["interpreter_needed"] else None,
            "interpreter_gender": language["interpreter_gender"], "interpreter_name": None, "interpreter_bidx": None,
            "status": "scheduled", "attendance": None, "notes": None, "scheduled_by_id": caseworker.id,
            "recorded_by_id": None, "recorded_at": None, "created_at": scheduled_at, "version": 1})
        if _chance(rng, 0.1):
            interview["remote"] = True
        else:
            interview["place"] = f"{office.name}, interview room {rng.randint(1, 6)}"
        line.event(scheduled_at, caseworker, EventCode.INTERVIEW_SCHEDULED, {
            "interview_id": interview["id"], "person_id": principal["id"], "starts_at": starts_at.isoformat(),
            "duration_minutes": duration, "remote": interview["remote"], "interviewer_id": caseworker.id,
            "interpreter_language": interview["interpreter_language"],
            "interpreter_gender": interview["interpreter_gender"], "interpreter_booked": False})
        if case["status"] == "assigned":
            _transition(line, case, scheduled_at, caseworker, "interview_scheduled")
        recorded_at = starts_at + timedelta(minutes=duration + rng.randint(5, 90))
        if stop(recorded_at):
            return
        attended = attempt == 1 or not _chance(rng, 0.05)
        # As record_interview: attended -> recorded, interviewed; a no-show (here always with a
        # good reason) -> missed, back to assigned, and a new interview is booked.
        interview.update(status="recorded" if attended else "missed",
                         attendance="attended" if attended else "absent_excused",
                         recorded_by_id=caseworker.id, recorded_at=recorded_at, version=2)
        if attended:
            grounds = people[0]["claim"]["grounds"]
            with_interpreter = f" with an interpreter ({interview['interpreter_language']})" \
                if interview["interpreter_language"] else ""
            interview["notes"] = _Text(
                f"Interview held{with_interpreter}. The applicant confirmed the identity and travel route and "
                f"described the reasons for the claim ({', '.join(grounds) or 'not stated'}). "
                + (people[0]["claim"]["statement"] or ""))
        line.event(recorded_at, caseworker, EventCode.INTERVIEW_RECORDED if attended else EventCode.INTERVIEW_MISSED,
                   {"interview_id": interview["id"], "attendance": interview["attendance"],
                    "notes_written": attended})
        if attended:
            _transition(line, case, recorded_at, caseworker, "interviewed")
            attended_at = recorded_at
            break
        _transition(line, case, recorded_at, caseworker, "assigned")
    day = [d if d > attended_at.date() else _working_day(attended_at.date() + timedelta(days=1 + n))
           for n, d in enumerate(day)]

    # -- drafts, one per person, all with the principal's outcome (family unity)
    outcome = _outcome(rng, origin, case["track"])
    drafted_at = _at(day[2], rng, line.last)
    if stop(drafted_at):
        return
    decisions = []
    for person in persons:
        decision = batch.add("decision", {
            "id": batch.new_id(), "case_id": case["id"], "person_id": person["id"], "office_id": case["office_id"],
            "corrects_decision_id": None,
            "round": 1, "status": "draft", "outcome": outcome, "legal_basis": LEGAL_BASIS[outcome],
            "reasons": _Text(_reasons(outcome, origin)), "drafted_by_id": caseworker.id,
            "last_edited_by_id": caseworker.id, "submitted_at": None, "approved_by_id": None, "approved_at": None,
            "issued_by_id": None, "issued_at": None, "procedure_track": None, "created_at": drafted_at,
            "updated_at": drafted_at, "version": 1})
        decisions.append(decision)
        line.event(drafted_at, caseworker, EventCode.DECISION_DRAFTED, {
            "decision_id": decision["id"], "person_id": person["id"], "created": True, "outcome": outcome,
            "legal_basis": LEGAL_BASIS[outcome], "reasons_written": True})
    _transition(line, case, drafted_at, caseworker, "decision_drafted")

    # -- submitted for review; sometimes returned with comments first; approved by a supervisor
    submitted_at = _at(day[3], rng, line.last)
    rounds = 2 if _chance(rng, 0.08) else 1
    for review_round in range(rounds):
        if stop(submitted_at):
            return
        _transition(line, case, submitted_at, caseworker, "under_review")
        for decision in decisions:
            if decision["status"] in ("draft", "returned"):
                _touch(decision, submitted_at, status="submitted", submitted_at=submitted_at)
                line.event(submitted_at, caseworker, EventCode.DECISION_SUBMITTED,
                           {"decision_id": decision["id"], "outcome": outcome})
        if review_round == 0 and rounds == 2:
            returned_at = submitted_at + timedelta(days=rng.randint(1, 5), minutes=rng.randint(1, 300))
            if stop(returned_at):
                return
            decision = decisions[0]
            batch.add("decision_review", {"id": batch.new_id(), "decision_id": decision["id"],
                                          "reviewer_id": supervisor.id, "action": "return",
                                          "comments": _Text(rng.choice(RETURN_COMMENTS)), "created_at": returned_at})
            _touch(decision, returned_at, status="returned")
            line.event(returned_at, supervisor, EventCode.DECISION_RETURNED,
                       {"decision_id": decision["id"], "comments_written": True})
            _transition(line, case, returned_at, supervisor, "decision_drafted")
            edited_at = returned_at + timedelta(days=rng.randint(1, 7), minutes=rng.randint(1, 300))
            if stop(edited_at):
                return
            _touch(decision, edited_at, status="draft")
            line.event(edited_at, caseworker, EventCode.DECISION_DRAFTED, {
                "decision_id": decision["id"], "person_id": decision["person_id"], "created": False,
                "outcome": outcome, "legal_basis": LEGAL_BASIS[outcome], "reasons_written": True})
            submitted_at = edited_at + timedelta(hours=rng.randint(1, 48))
    approved_at = max(_at(day[4], rng), submitted_at + timedelta(hours=rng.randint(2, 72)))
    for decision in decisions:
        if stop(approved_at):
            return
        batch.add("decision_review", {"id": batch.new_id(), "decision_id": decision["id"], "reviewer_id": supervisor.id,
                                      "action": "approve", "comments": None, "created_at": approved_at})
        _touch(decision, approved_at, status="approved", approved_by_id=supervisor.id, approved_at=approved_at)
        line.event(approved_at, supervisor, EventCode.DECISION_APPROVED,
                   {"decision_id": decision["id"], "outcome": outcome})
        approved_at += timedelta(minutes=rng.randint(1, 20))

    # -- issued by the caseworker, served, then appealed or not
    issued_at = max(_at(day[5], rng), approved_at + timedelta(hours=rng.randint(1, 48)))
    if stop(issued_at):
        return
    _transition(line, case, issued_at, caseworker, "decision_issued")
    for decision in decisions:
        _touch(decision, issued_at, status="issued", issued_by_id=caseworker.id, issued_at=issued_at,
               procedure_track=case["track"])
        line.event(issued_at, caseworker, EventCode.DECISION_ISSUED,
                   {"decision_id": decision["id"], "person_id": decision["person_id"], "outcome": outcome})
    served_on = _working_day(issued_at.date() + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5, 7))))
    served_at = _at(served_on, rng, issued_at)
    if not line.happened(served_at):  # from here on a withdrawal is no longer possible
        return
    terms = world.appeal_terms(case["track"], outcome)
    appeal_deadline = decision_settings.appeal_deadline(served_on, terms)
    method = rng.choice(("in_person", "in_person", "post", "representative", "electronic"))
    for decision in decisions:
        batch.add("decision_notification", {
            "id": batch.new_id(), "decision_id": decision["id"], "served_on": served_on, "method": method,
            "appeal_deadline": appeal_deadline, "suspensive_effect": terms.suspensive,
            "recorded_by_id": caseworker.id, "created_at": served_at})
        line.event(served_at, caseworker, EventCode.DECISION_NOTIFIED, {
            "decision_id": decision["id"], "served_on": served_on.isoformat(), "method": method,
            "appeal_deadline": appeal_deadline.isoformat(), "suspensive_effect": terms.suspensive})
    _transition(line, case, served_at, caseworker, "notified")

    if _chance(rng, APPEAL_SHARE.get(outcome, 0.0)):
        late = _chance(rng, 0.05)
        lodged = appeal_deadline + timedelta(days=rng.randint(1, 10)) if late else \
            served_on + timedelta(days=rng.randint(0, max(0, (appeal_deadline - served_on).days)))
        appeal_at = _at(_working_day(lodged), rng, served_at)
        if not line.happened(appeal_at):
            return
        appeals = []
        for decision in decisions:
            days_late = max((appeal_at.date() - appeal_deadline).days, 0)
            appeal = batch.add("appeal", {
                "id": batch.new_id(), "decision_id": decision["id"], "case_id": case["id"],
                "lodged_on": appeal_at.date(),
                "late": days_late > 0, "days_late": days_late,
                "court_reference": f"AC {appeal_at.year}/{rng.randint(1000, 99999)}",
                "suspension_requested": terms.suspensive == decision_settings.ON_REQUEST and _chance(rng, 0.7),
                "outcome": None, "decided_on": None, "lodged_recorded_by_id": caseworker.id,
                "decided_recorded_by_id": None, "created_at": appeal_at, "version": 1})
            appeals.append(appeal)
            line.event(appeal_at, caseworker, EventCode.APPEAL_LODGED, {
                "appeal_id": appeal["id"], "decision_id": decision["id"], "lodged_on": appeal_at.date().isoformat(),
                "appeal_deadline": appeal_deadline.isoformat(), "late": appeal["late"], "days_late": days_late,
                "suspension_requested": appeal["suspension_requested"]})
            if case["status"] == "notified":
                _transition(line, case, appeal_at, caseworker, "appeal_lodged")
        decided_at = _at(_working_day(appeal_at.date() + timedelta(days=int(rng.lognormvariate(math.log(200), 0.5)))),
                         rng, appeal_at)
        if not line.happened(decided_at):
            return
        appeal_outcome = _pick(rng, [o for o, _ in APPEAL_OUTCOMES], list(_accumulate(w for _, w in APPEAL_OUTCOMES)))
        for appeal in appeals:
            appeal.update(outcome=appeal_outcome, decided_on=decided_at.date(), decided_recorded_by_id=caseworker.id,
                          version=2)
            line.event(decided_at, caseworker, EventCode.APPEAL_DECIDED, {
                "appeal_id": appeal["id"], "decision_id": appeal["decision_id"], "outcome": appeal_outcome,
                "decided_on": decided_at.date().isoformat()})
        _transition(line, case, decided_at, caseworker, "appeal_decided", automatic=True)
        if appeal_outcome == "remitted":
            _transition(line, case, decided_at, caseworker, "triaged", automatic=True)
            case.update(assigned_to_id=None, assigned_at=None)
        else:
            _transition(line, case, decided_at, caseworker, "closed", automatic=True)
        return
    closed_at = _at(_working_day(appeal_deadline + timedelta(days=rng.randint(1, 20))), rng, served_at)
    if not line.happened(closed_at):
        return
    if outcome == "transfer_decision":
        _transition(line, case, closed_at, supervisor, "transferred")
    else:
        _transition(line, case, closed_at, caseworker, "closed")


def _staff(case: dict, office: _Office) -> _Staff | None:
    assignee = case["assigned_to_id"]
    return next((s for s in office.caseworkers if s.id == assignee), None) if assignee else None


def _touch(decision: dict, when: datetime, **values) -> None:
    decision.update(values)
    decision["updated_at"] = when
    decision["version"] += 1


def _reasons(outcome: str, origin: Origin) -> str:
    if outcome in decision_settings.POSITIVE_OUTCOMES:
        return (f"The account is consistent and supported by country information on {origin.code}; "
                "the applicant has a well-founded fear of persecution or faces a real risk of serious harm.")
    if outcome == "inadmissible":
        return "The application is inadmissible: protection is available in another State (APR Art 38)."
    if outcome == "transfer_decision":
        return "Another Member State has accepted responsibility for examining the application."
    return ("The statements were vague and inconsistent on material points, and country information does not "
            "show a real risk on return. No ground for protection is established.")


# -- the people of a case --------------------------------------------------------------------------------

def _birth(rng: random.Random, origin: Origin, made_on: date, age: int) -> dict:
    """A date of birth giving exactly ``age`` on the day the claim was made; estimated ones are
    1 January of the estimated year (the usual convention), month-precise ones the 1st."""
    anniversary = made_on.replace(year=made_on.year - age, day=min(made_on.day, 28))
    born = anniversary - timedelta(days=rng.randint(1, 330))
    if _chance(rng, origin.estimated_birth):
        return {"date_of_birth": date(made_on.year - age, 1, 1).isoformat(), "precision": "year", "estimated": True}
    first_of_month = born.replace(day=1)
    if _chance(rng, 0.04) and age_on(first_of_month, made_on) == age:
        return {"date_of_birth": first_of_month.isoformat(), "precision": "month", "estimated": False}
    return {"date_of_birth": born.isoformat(), "precision": "day", "estimated": False}


def _adult_age(rng: random.Random, sex: str) -> int:
    x = rng.random()
    if sex == "M":
        return rng.randint(18, 34) if x < 0.7 else rng.randint(35, 64) if x < 0.98 else rng.randint(65, 80)
    return rng.randint(18, 34) if x < 0.55 else rng.randint(35, 64) if x < 0.95 else rng.randint(65, 80)


def _household(rng: random.Random, origin: Origin, kind: str, made_on: date, today: date,
               arrival: dict) -> list[dict]:
    """The principal applicant first, then the dependants, as registration sections."""
    names = NAMES[origin.names]
    family_name = rng.choice(names["family"])
    if origin.names == "spanish":
        family_name = f"{family_name} {rng.choice(names['family'])}"
    members: list[tuple[str, int, str | None]] = []  # (sex, age, relationship)
    if kind == "unaccompanied_minor":
        sex = "M" if _chance(rng, 0.85) else "F"
        age = rng.randint(16, 17) if _chance(rng, 2 / 3) else rng.randint(12, 15) if _chance(rng, 0.85) \
            else rng.randint(8, 11)
        members.append((sex, age, None))
    elif kind in ("single_man", "single_woman"):
        sex = "M" if kind == "single_man" else "F"
        members.append((sex, _adult_age(rng, sex), None))
    else:
        first = "F" if kind == "mother_children" or (kind == "couple" and _chance(rng, 0.2)) else "M"
        age = max(20, _adult_age(rng, first)) if kind != "adult_relative" else _adult_age(rng, first)
        members.append((first, min(age, 55) if "children" in kind else age, None))
        if kind in ("couple", "couple_children"):
            members.append(("F" if first == "M" else "M", max(18, age + rng.randint(-6, 3)), "spouse"))
        if "children" in kind:
            for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))):
                child_age = rng.randint(0, min(17, max(0, age - 18)))
                members.append(("M" if _chance(rng, 0.5) else "F", child_age, "child"))
        if kind == "adult_relative":
            relation = rng.choice(("parent", "sibling", "sibling"))
            other_age = rng.randint(55, 80) if relation == "parent" else max(18, age + rng.randint(-8, 8))
            members.append(("F" if _chance(rng, 0.5) else "M", other_age, relation))
    language = _language(rng, origin, members[0][0])
    contact = _contact(rng)
    principal_grounds = _grounds(rng, origin, members[0][0])
    people = []
    for position, (sex, age, relationship) in enumerate(members):
        if _chance(rng, 0.001):
            sex = "X"
        given = rng.choice(names["F" if sex == "F" else "M"])
        if origin.names in ("levant", "arabic", "afghan") and _chance(rng, 0.4) and age >= 18:
            given = f"{given} {rng.choice(names['M'])}"  # own name and father's name
        family = family_name
        if origin.names in ("tigrinya", "somali") and position == 0:
            family = rng.choice(names["family"])  # a father's name, not a shared surname
        if origin.names == "afghan" and _chance(rng, 0.04):
            family = ""  # one name only
        aliases = []
        if _chance(rng, 0.12):
            variant_given = " ".join(rng.choice(SPELLINGS.get(w, (w,))) for w in given.split())
            variant_family = rng.choice(SPELLINGS.get(family, (family,))) if family else ""
            alias = f"{variant_given} {variant_family}".strip()
            if alias != f"{given} {family}".strip():
                aliases.append(alias)
        minor = age < 18
        unaccompanied = minor and relationship is None
        people.append(_person(rng, origin, position, sex, age, relationship, given, family, aliases, made_on,
                              today, language, contact, principal_grounds if position == 0 else [], unaccompanied,
                              kind, arrival))
    return people


def _language(rng: random.Random, origin: Origin, sex: str) -> dict:
    preferred = origin.languages[0] if _chance(rng, 0.7) else rng.choice(origin.languages)
    languages = [preferred] + (["eng"] if _chance(rng, 0.2) and preferred != "eng" else [])
    needed = preferred not in ("eng", "fra") or _chance(rng, 0.3)
    gender = "female" if sex == "F" and _chance(rng, 0.3) else "any"
    return {"languages": languages, "preferred_language": preferred, "interpreter_needed": needed,
            "interpreter_gender": gender}


def _contact(rng: random.Random) -> dict:
    in_centre = _chance(rng, 0.75)
    # +44 7700 900xxx is a range reserved for fiction: no real phone is ever dialled.
    phone = f"+44 7700 900{rng.randint(0, 999):03d}" if _chance(rng, 0.7) else None
    return {"address": None if in_centre else f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
            "reception_centre": f"Reception centre {rng.randint(1, 12)}" if in_centre else None,
            "phone": phone, "email": None}


def _grounds(rng: random.Random, origin: Origin, sex: str) -> list[str]:
    grounds = [rng.choice(origin.grounds)]
    if _chance(rng, 0.35):
        second = rng.choice(origin.grounds)
        if second not in grounds:
            grounds.append(second)
    if sex == "F" and "gender" not in grounds and _chance(rng, 0.15):
        grounds.append("gender")
    return [g for g in grounds if g != "gender" or sex == "F"] or ["generalised_violence"]


def _person(rng: random.Random, origin: Origin, position: int, sex: str, age: int, relationship: str | None,
            given: str, family: str, aliases: list[str], made_on: date, today: date, language: dict, contact: dict,
            grounds: list[str], unaccompanied: bool, household: str, arrival: dict) -> dict:
    """One person's sections, exactly as registration stores them (model_dump of PersonInput)."""
    principal = position == 0
    birth = {**_birth(rng, origin, made_on, age), "place_of_birth": None, "sex": sex}
    if _chance(rng, 0.3):
        birth["place_of_birth"] = origin.code.title()  # a town name would do; the country is enough here
    documents = []
    if age >= 16 and _chance(rng, origin.passport):
        documents.append(_document(rng, "passport", origin.code, made_on))
    elif age >= 18 and _chance(rng, 0.25):
        documents.append(_document(rng, "national_id", origin.code, made_on))
    elif age < 16 and _chance(rng, 0.3):
        documents.append(_document(rng, "birth_certificate", origin.code, None))
    if principal and documents and _chance(rng, 0.03):
        documents[0]["authenticity"] = "false"
    elif principal and _chance(rng, 0.01):
        documents.append({**_document(rng, "passport", origin.code, made_on), "withheld": True})
    vulnerabilities = _vulnerabilities(rng, origin, sex, age, unaccompanied, principal, household)
    needs_guarantees = bool(vulnerabilities) and set(vulnerabilities) - {"minor"} != set() and _chance(rng, 0.35)
    special_needs = {"vulnerabilities": vulnerabilities, "special_procedural_guarantees_needed": needs_guarantees,
                     "adequate_support": {"border_location": not (needs_guarantees and _chance(rng, 0.3)),
                                          "accelerated_procedure": not (needs_guarantees and _chance(rng, 0.15))},
                     "notes": None}
    statement = None
    if grounds:
        statement = " ".join(rng.choice(STATEMENTS.get(g, STATEMENTS["generalised_violence"])) for g in grounds[:2])
    representative = None
    appointed = None
    if unaccompanied and _chance(rng, 0.7):
        representative = f"{rng.choice(STAFF_NAMES)} (guardian)"
        appointed = made_on + timedelta(days=rng.randint(1, 15))
        appointed = appointed.isoformat() if appointed <= today else None
        representative = representative if appointed else None
    members_elsewhere = []
    if (unaccompanied and _chance(rng, 0.12)) or (principal and not unaccompanied and _chance(rng, 0.01)):
        members_elsewhere.append({
            "relationship": rng.choice(("parent", "sibling")) if unaccompanied else "spouse",
            "family_name": family, "given_names": rng.choice(NAMES[origin.names]["M"]), "date_of_birth": None,
            "member_state": rng.choice(DESTINATION_STATES), "legally_present": True,
            "reunification_in_best_interests": True})
    return {
        "principal": principal, "relationship": relationship,
        "identity": {"family_name": family, "given_names": given, "aliases": aliases, "original_script_name": None},
        "birth": birth,
        "nationality": {"nationalities": [origin.code], "stateless": False, "former_habitual_residence": None},
        "language": dict(language, languages=list(language["languages"])),
        "contact": dict(contact),
        "documents": documents,
        "biometrics": _biometrics(rng, origin, age, made_on, principal, arrival),
        "history": _history(rng, origin, made_on, principal),
        "family": {"unaccompanied_minor": unaccompanied, "age_disputed": unaccompanied and _chance(rng, 0.15),
                   "representative_name": representative, "representative_appointed_on": appointed,
                   "members_elsewhere": members_elsewhere},
        "special_needs": special_needs,
        "claim": {"grounds": grounds, "statement": statement},
        "security": {"flag": True, "basis": SECURITY_BASIS} if principal and age >= 18 and _chance(rng, 0.003)
        else {"flag": False, "basis": None},
    }


def _document(rng: random.Random, kind: str, country: str, made_on: date | None) -> dict:
    number = None
    if kind != "birth_certificate" or _chance(rng, 0.5):
        number = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)) + f"{rng.randrange(10**7):07d}"
    valid_until = (made_on + timedelta(days=rng.randint(-700, 2500))).isoformat() if made_on else None
    return {"type": kind, "number": number, "issuing_country": country, "valid_until": valid_until,
            "authenticity": "not_assessed", "withheld": False}


def _vulnerabilities(rng: random.Random, origin: Origin, sex: str, age: int, unaccompanied: bool, principal: bool,
                     household: str) -> list[str]:
    found = []
    if age < 18:
        found.append("minor")
    if unaccompanied:
        found.append("unaccompanied_minor")
    if age >= 65:
        found.append("elderly")
    if principal and household in ("mother_children", "father_children"):
        found.append("single_parent_with_minor_children")
    if age >= 14:
        for code, probability in (("mental_disorder_ptsd", 0.07), ("torture_rape_serious_violence", 0.04),
                                  ("serious_illness", 0.03), ("disability", 0.02), ("lgbtiq", 0.01)):
            if _chance(rng, probability):
                found.append(code)
        if sex == "F":
            for code, probability in (("gender_based_violence", 0.08), ("forced_marriage", 0.03),
                                      ("pregnant", 0.08 if 18 <= age <= 42 else 0.0),
                                      ("fgm", 0.25 if origin.code in ("GIN", "SOM", "ERI", "EGY", "SDN", "MLI")
                                       else 0.0),
                                      ("trafficking_victim", 0.15 if origin.code == "NGA" else 0.01)):
                if _chance(rng, probability):
                    found.append(code)
    return found


def _biometrics(rng: random.Random, origin: Origin, age: int, made_on: date, principal: bool, arrival: dict) -> dict:
    if age < 6:  # Eurodac takes fingerprints from the age of six
        return {"record_ref": None, "eurodac_hits": [], "refused": False}
    hits = []
    overland = arrival["location_context"] == "inland" and arrival["transit_countries"]
    x = rng.random()
    if overland and x < 0.1:
        hits.append({"member_state": rng.choice(EURODAC_STATES), "category": "irregular_entry",
                     "hit_date": (made_on - timedelta(days=rng.randint(10, 120))).isoformat()})
    elif (overland and x < 0.16) or x < 0.015:
        hits.append({"member_state": rng.choice(DESTINATION_STATES), "category": "applicant",
                     "hit_date": (made_on - timedelta(days=rng.randint(30, 700))).isoformat()})
    elif overland and x < 0.17:
        hits.append({"member_state": "GRC", "category": "beneficiary_of_international_protection",
                     "hit_date": (made_on - timedelta(days=rng.randint(200, 1500))).isoformat()})
    return {"record_ref": f"BIO-{rng.randrange(16**10):010X}", "eurodac_hits": hits,
            "refused": principal and age >= 18 and _chance(rng, 0.004)}


def _history(rng: random.Random, origin: Origin, made_on: date, principal: bool) -> dict:
    previous, returned, protected = [], None, None
    if principal and _chance(rng, 0.07):
        previous.append({"member_state": rng.choice(DESTINATION_STATES), "decision": "rejected", "final": True,
                         "new_elements": _chance(rng, 0.6)})
    if principal and _chance(rng, 0.015):
        returned = {"received_on": (made_on - timedelta(days=rng.randint(5, 300))).isoformat(),
                    "informed_of_consequences": _chance(rng, 0.8)}
    if principal and origin.code in ("SYR", "AFG") and _chance(rng, 0.005):
        protected = "GRC"
    return {"previous_applications": previous, "return_decision": returned, "protection_granted_by": protected,
            "first_country_of_asylum": None, "safe_third_country": None}


def _arrival(rng: random.Random, origin: Origin, made_on: date) -> dict:
    if _chance(rng, origin.by_air):
        location = "transit_zone" if _chance(rng, 0.08) else "inland"
        route: list[str] = []
    elif _chance(rng, origin.by_sea):
        location = "disembarkation_sar" if _chance(rng, 0.5) else "inland"
        route = [c for c in origin.route if _chance(rng, 0.8)] + ["ITA" if _chance(rng, 0.7) else "ESP"]
    else:
        location = _pick(rng, OVERLAND, OVERLAND_CUMULATIVE)
        route = [c for c in origin.route if _chance(rng, 0.8)]
    at_border = location != "inland"
    entry = made_on if at_border else made_on - timedelta(days=rng.randint(0, 300 if origin.by_air > 0.5 else 60))
    irregular = not origin.by_air > 0.5 and location != "transit_zone" and _chance(rng, 0.9 if at_border else 0.6)
    return {
        "location_context": location,
        "entry_date": entry.isoformat(),
        "entry_place": ENTRY_PLACES[location],
        "authorised_to_enter": False if at_border else None,
        "fulfils_entry_conditions": False if at_border else None,
        "transit_countries": route,
        "irregular_entry_date": entry.isoformat() if irregular else None,
        "presented_without_delay": not (irregular and not at_border and _chance(rng, 0.12)),
    }


def _payload(made_on: date, registered_on: date, lodged_on: date | None, arrival: dict, people: list[dict],
             office: _Office) -> dict:
    """The registration payload (app.intake.services.registration_payload's shape)."""
    return {"made_on": made_on.isoformat(),
            "made_place": arrival["entry_place"] if arrival["location_context"] != "inland" else office.name,
            "registered_on": registered_on.isoformat(),
            "lodged_on": lodged_on.isoformat() if lodged_on else None, "good_cause_for_not_lodging": False,
            "arrival": arrival, "persons": people}


def _person_row(batch: _Batch, case_id: str, position: int, person: dict, made_on: date,
                created_at: datetime) -> dict:
    """The person row with its encrypted sections (still plaintext), blind indexes, match keys
    and document index rows, as app.intake.services._store_person and _index_person make them."""
    person_id = batch.new_id()
    birth = person["birth"]
    born = date.fromisoformat(birth["date_of_birth"]) if birth["date_of_birth"] else None
    age = age_on(born, made_on) if born else None
    identity = person["identity"]
    nationality = person["nationality"]
    row = batch.add("person", {
        "id": person_id, "case_id": case_id, "position": position, "is_principal": person["principal"],
        "nationalities": list(nationality["nationalities"]), "stateless": nationality["stateless"],
        "former_habitual_residence": nationality["former_habitual_residence"], "stat_sex": birth["sex"],
        "stat_age_group": _age_group(age),
        "minor_at_application": bool((age is not None and age < 18) or person["family"]["unaccompanied_minor"]),
        "linked_person_id": None,
        "relationship_to_principal":
            _Json({"relationship": person["relationship"]}) if person["relationship"] else None,
        **{section: _Json(person[section]) for section in (
            "identity", "birth", "language", "contact", "documents", "history", "family", "biometrics",
            "special_needs", "claim", "security")},
        "family_name_bidx": _token(identity["family_name"], BIDX_FAMILY_NAME) if identity["family_name"] else None,
        "given_names_bidx": _token(identity["given_names"], BIDX_GIVEN_NAMES) if identity["given_names"] else None,
        "date_of_birth_bidx": _token(birth["date_of_birth"], BIDX_DATE_OF_BIRTH) if born else None,
        "created_at": created_at, "version": 1})
    national = nationality["nationalities"][0] if nationality["nationalities"] else \
        nationality["former_habitual_residence"]
    keys = matching.match_keys(identity_for_matching(person, national))
    for token in sorted({_token(key, BIDX_MATCH_KEY, False) for key in keys}):
        batch.add("person_match_key", {"person_id": person_id, "key": token})
    numbers = {normalise_document_number(d["number"]) for d in person["documents"] if d["number"]}
    for number in sorted(n for n in numbers if n):
        batch.add("document_number_index",
                  {"person_id": person_id, "number_bidx": _token(number, BIDX_DOCUMENT_NUMBER, False)})
    return row


# -- sealing a batch: encrypted, chained, in the driver's own form -------------------------------------



def _section_encoder() -> Callable[[object], str]:
    """EncryptedJSON's plaintext (app/crypto.py: sorted keys, compact, not ASCII-escaped), with
    the C encoder built once: ``json.dumps`` with options builds a JSONEncoder and then a C
    encoder (and a dict for circular checks) on every call, half the cost of a small dict.
    Generated values have no cycles. Each batch checks one value against EncryptedJSON.encode."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this interpreter
        return json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    join = "".join

    def section_json(value: object) -> str:
        return join(encode(value, 0))
    return section_json


_SECTION_JSON = _section_encoder()
# What SQLAlchemy's JSON type stores in the two plain JSON columns (json.dumps' defaults).
_COLUMN_JSON = json.JSONEncoder().encode
AUDIT_CONTEXT = "audit_event.details:{}"  # the associated data of AuditEvent.details


@dataclass
class _Sealed:
    """One batch as it is stored: per table its column names and rows as tuples of driver values
    (encrypted columns encrypted); the audit events in time order, (when, actor id, actor role,
    code, case id, details as JSON bytes or None), to be encrypted and chained by the storing
    process, which alone knows the chain head; and what the report counts. Tuples, not dicts:
    a third of the size to send from the producer process, and what ``executemany`` and
    ``COPY`` take without conversion."""

    tables: list[tuple[str, tuple[str, ...], list[tuple]]]
    events: list[tuple]
    # True when the encrypted columns still hold their plaintext bytes, for the storing process
    # to encrypt (see ``_seal_in_producer``).
    plaintext: bool
    cases: int
    persons: int
    decisions: int
    tracks: Counter
    statuses: Counter


@dataclass(frozen=True)
class _Layout:
    """How the rows of one table go to one dialect's driver."""

    table: str
    columns: tuple[str, ...]
    encrypted: tuple[str, ...]
    datetimes: tuple[str, ...]  # SQLite only: stored as text
    dates: tuple[str, ...]      # SQLite only: stored as text
    json: tuple[str, ...]
    defaults: dict[str, object]  # scalar column defaults


@cache
def _layout(model, dialect: str) -> _Layout:
    sqlite = dialect == "sqlite"
    table = model.__table__
    return _Layout(
        table=table.name, columns=tuple(c.name for c in table.columns),
        encrypted=tuple(c.attribute for c in crypto.ENCRYPTED_COLUMNS if c.model.__tablename__ == table.name),
        datetimes=tuple(c.name for c in table.columns if sqlite and isinstance(c.type, UTCDateTime)),
        dates=tuple(c.name for c in table.columns if sqlite and isinstance(c.type, Date)),
        json=tuple(c.name for c in table.columns if isinstance(c.type, JSON)),
        defaults={c.name: c.default.arg for c in table.columns if c.default is not None and c.default.is_scalar})


class _Sealer:
    """The keyring's encryption for a batch of values: ``Keyring.encryptor()`` (the current data
    key looked up once) where the keyring has it, else ``Keyring.encrypt``; AES-256-GCM, its
    stored format, associated data ``table.column:row-id``, a fresh random nonce per value. The
    first value is decrypted back through the keyring, so a value the application could not
    read stops generation instead of being stored."""

    def __init__(self):
        ring = crypto.keyring()
        self.ring = ring
        make = getattr(ring, "encryptor", None)
        self.encrypt = make() if make else ring.encrypt
        self.checked = False

    def __call__(self, plaintext: bytes, context: str) -> bytes:
        sealed = self.encrypt(plaintext, context)
        if not self.checked:
            if self.ring.decrypt(sealed, context) != plaintext:
                raise RuntimeError("the demo data sealer does not give what app/crypto.py reads")
            self.checked = True
        return sealed


def _make_batch(world: _World, days: array, start: int, stop: int) -> _Sealed:
    """Cases ``start``..``stop - 1``, simulated and sealed: every wrapped value encrypted, bound to
    table, column and row, the values in the form the database driver takes, the events in time
    order with their details as JSON."""
    batch = _Batch()
    for index in range(start, stop):
        _simulate_case(world, index, date.fromordinal(days[index]), batch)
    if batch.payloads:
        parse_registration(batch.payloads[0])  # the sections still have registration's shape
        batch.payloads = []
    _deduplicate_references(world, batch)
    dialect = db.engine.dialect.name
    seal = _Sealer()
    cases = batch.rows["asylum_case"]
    in_producer = _seal_in_producer(dialect)
    sealed = _Sealed(tables=[], events=[], plaintext=not in_producer, cases=len(cases),
                     persons=len(batch.rows["person"]), decisions=len(batch.rows["decision"]),
                     tracks=Counter(row["track"] for row in cases), statuses=Counter(row["status"] for row in cases))
    first_section = batch.rows["person"][0]["identity"].value if batch.rows["person"] else None
    if first_section is not None and _SECTION_JSON(first_section).encode() != EncryptedJSON.encode(first_section):
        raise RuntimeError("the demo data JSON encoding no longer matches app/crypto.py's")
    for model in TABLES:
        layout = _layout(model, dialect)
        rows = batch.rows.pop(layout.table)
        sealed.tables.append((layout.table, layout.columns, _seal_rows(rows, layout, seal if in_producer else None)))
    batch.events.sort(key=operator.itemgetter(WHEN))  # stable: events at one moment keep their order
    sealed.events = [(when, actor.id if actor else None, actor.role if actor else None, int(code), subject,
                      _SECTION_JSON(details).encode() if details else None)
                     for when, actor, code, subject, details in batch.events]
    return sealed


def _seal_in_producer(dialect: str) -> bool:
    """Where the encrypted columns are encrypted: wherever there is CPU to spare. On SQLite the
    storing process inserts (B-tree work in its own process) and the producer encrypts; on
    PostgreSQL the server inserts, the storing process mostly waits, and it encrypts."""
    return dialect == "sqlite"


def _seal_rows(rows: list[dict], layout: _Layout, seal: _Sealer | None) -> list[tuple]:
    """The rows as driver tuples: wrapped values encoded as the model descriptors would and,
    with ``seal``, encrypted (``table.column:row-id``; without, ``_encrypt_rows`` does it later),
    JSON columns serialised, on SQLite timestamps and dates as the text SQLAlchemy stores."""
    table = layout.table
    # Columns the simulation does not know of (added to the model since): their default, as an
    # ORM insert would give them, or NULL. A NOT NULL column without a default fails loudly.
    missing = [(name, layout.defaults.get(name)) for name in layout.columns if rows and name not in rows[0]]
    for row in rows:
        for name, default in missing:
            row[name] = default
        for name in layout.encrypted:
            value = row[name]
            if value is not None:
                raw = value.value.encode() if type(value) is _Text else _SECTION_JSON(value.value).encode()
                row[name] = seal(raw, f"{table}.{name}:{row['id']}") if seal else raw
        for name in layout.datetimes:
            value = row[name]
            if value is not None:
                row[name] = _sqlite_datetime(value)
        for name in layout.dates:
            value = row[name]
            if value is not None:
                row[name] = value.isoformat()
        for name in layout.json:
            row[name] = _COLUMN_JSON(row[name])
    values = operator.itemgetter(*layout.columns)
    return [values(row) for row in rows]


def _encrypt_rows(batch: _Sealed, seal: _Sealer) -> None:
    """Encrypt the plaintext bytes ``_seal_rows`` left in the encrypted columns, in place."""
    dialect = db.engine.dialect.name
    models = {model.__tablename__: model for model in TABLES}
    for number, (table, columns, rows) in enumerate(batch.tables):
        layout = _layout(models[table], dialect)
        if not layout.encrypted:
            continue
        key = columns.index("id")
        positions = [(columns.index(name), f"{table}.{name}:") for name in layout.encrypted]
        sealed = []
        for row in rows:
            row = list(row)
            for position, prefix in positions:
                value = row[position]
                if value is not None:
                    row[position] = seal(value, prefix + row[key])
            sealed.append(row)
        batch.tables[number] = (table, columns, sealed)
    batch.plaintext = False


def _sqlite_datetime(value: datetime) -> str:
    # What UTCDateTime + SQLite's DATETIME store: naive UTC, always with microseconds. Every
    # generated moment is built in UTC, so the aware text minus its "+00:00" is that.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


# -- the audit chain, computed in bulk ------------------------------------------------------------------

# The encoding of app/audit/chain.py (hash_fields), specialised to the generator's events: a
# constant prefix, the fields that vary, one SHA-256 per event, about three times faster than the
# general function. Each batch's first event is also hashed with chain.event_hash and compared,
# so a change there stops generation instead of writing a chain that does not verify.
_LEN = chain.LENGTH.pack
_NONE = chain.NULL_FIELD
_DOMAIN = chain.DOMAIN
_TIME_LEN = _LEN(27)  # "YYYY-MM-DDTHH:MM:SS.ffffffZ"
_SUBJECT_TYPE = _LEN(4) + b"case"
_OUTCOME_AND_NO_REQUEST = _LEN(7) + b"success" + _NONE + _NONE


@cache
def _actor_field(actor_id: int | None, role: str | None) -> bytes:
    if actor_id is None:
        return _NONE + (_NONE if role is None else _LEN(len(role.encode())) + role.encode())
    raw = b"%d" % actor_id
    return _LEN(len(raw)) + raw + (_NONE if role is None else _LEN(len(role.encode())) + role.encode())


@cache
def _code_field(code: int) -> bytes:
    raw = b"%d" % code
    return _LEN(len(raw)) + raw


def _chain(events: list[tuple], follows: tuple[int, bytes], seal: _Sealer,
           dialect: str) -> tuple[list[tuple], tuple[int, bytes]]:
    """Audit rows for ``events`` ((when, actor id, actor role, code, case id, details JSON or None),
    in time order) appended after ``follows`` (seq, hash): details encrypted under their sequence
    number, each hash over the stored bytes. Returns the rows (in AuditEvent's column order)
    and the new head."""
    seq, previous = follows
    sqlite = dialect == "sqlite"
    sha256, join = hashlib.sha256, b"".join
    rows = []
    for when, actor_id, actor_role, code, subject_id, details_json in events:
        seq += 1
        details = seal(details_json, AUDIT_CONTEXT.format(seq)) if details_json is not None else None
        if when.tzinfo is not UTC:
            when = when.astimezone(UTC)
        text = when.isoformat(timespec="microseconds")
        raw_seq, raw_subject = b"%d" % seq, subject_id.encode()
        digest = sha256(join((
            _DOMAIN, previous, _LEN(len(raw_seq)), raw_seq, _TIME_LEN, text[:26].encode(), b"Z",
            _actor_field(actor_id, actor_role), _code_field(code), _SUBJECT_TYPE, _LEN(len(raw_subject)),
            raw_subject, _OUTCOME_AND_NO_REQUEST, _NONE if details is None else _LEN(len(details)) + details,
        ))).digest()
        if not rows and digest != event_hash(
                previous, seq=seq, occurred_at=when, actor_id=actor_id, actor_role=actor_role, code=code,
                subject_type="case", subject_id=subject_id, outcome="success", request_id=None,
                client_address=None, details_ciphertext=details):
            raise RuntimeError("the demo data audit hash no longer matches app/audit/chain.py's")
        rows.append((seq, text[:10] + " " + text[11:26] if sqlite else when, actor_id, actor_role, code, "case",
                     subject_id, "success", None, None, previous, digest, details))
        previous = digest
    return rows, (seq, previous)


# -- storing a batch -------------------------------------------------------------------------------------

# The forked producer's inputs: inherited through fork (the compiled ruleset does not pickle).
_PRODUCER: tuple | None = None


def _pipeline_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _start_producer() -> None:
    app, _world, _days = _PRODUCER
    with app.app_context():
        db.engine.dispose(close=False)  # the parent's connections stay the parent's


def _produce(start: int, stop: int) -> _Sealed:
    app, world, days = _PRODUCER
    with app.app_context():
        return _make_batch(world, days, start, stop)


def _batches(world: _World, days: array, count: int, batch_size: int, pipeline: bool | None) -> Iterator[_Sealed]:
    """The sealed batches in order. With ``pipeline`` (default: when there is more than one batch
    and fork is available on a multi-core machine) one forked process simulates, encrypts and
    chains the next batches while this one stores the current: one producer, so interview
    bookings, references and the chain stay exactly those of a run in one process. At most
    PIPELINE_DEPTH batches wait, so memory does not grow with ``count``."""
    global _PRODUCER
    # At least MIN_BATCHES batches (of at least 100 cases), so that even a small run (`make run`
    # makes 2000) overlaps preparing and storing instead of doing one after the other.
    batch_size = max(1, min(batch_size, max(100, math.ceil(count / MIN_BATCHES))))
    ranges = [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    if pipeline is None:
        pipeline = len(ranges) > 1 and _pipeline_available()
    if not pipeline:
        for start, stop in ranges:
            yield _make_batch(world, days, start, stop)
        return
    _PRODUCER = (current_app._get_current_object(), world, days)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_start_producer) as producer:
            pending = deque(producer.submit(_produce, start, stop) for start, stop in ranges[:PIPELINE_DEPTH])
            following = iter(ranges[PIPELINE_DEPTH:])
            while pending:
                batch = pending.popleft().result()
                upcoming = next(following, None)
                if upcoming is not None:
                    pending.append(producer.submit(_produce, *upcoming))
                yield batch
    finally:
        _PRODUCER = None


SQLITE_CACHE_KIB = 128 * 1024


@contextmanager
def _storage():
    """The connection the batches are stored through, one for the whole run (a transaction per
    batch). On SQLite with a 128 MiB page cache instead of the default 2 MiB: past a few
    hundred megabytes of database, every index insert otherwise reads its B-tree pages from the
    operating system again, which doubled the storing time at 100,000 cases. Fixed in size, and
    set back before the connection returns to the pool."""
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
            connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            connection.commit()
        try:
            yield connection
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
                connection.commit()


def _store(connection, batch: _Sealed, chain: tuple[int, bytes]) -> tuple[tuple[int, bytes], bool]:
    """In one transaction: insert every row, lock the chain head, append the batch's events and
    move the head. SQLite takes the write lock at BEGIN (app/database.py); PostgreSQL locks the
    head row (FOR UPDATE), so concurrent writers wait and the chain stays one gap-free sequence.

    The events are encrypted and chained before the transaction, after ``chain`` (the head
    this run's previous batch left), so the lock is not held meanwhile; if the head found under
    the lock is another (someone else appended events), they are chained again after it. Rows
    go straight to the driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL): they are
    already in its form, and SQLAlchemy's per-row parameter handling would cost more than the
    database's own work. Returns the new head, and whether the events had to be chained again."""
    head_table = AuditChainHead.__table__
    dialect = db.engine.dialect.name
    seal = _Sealer()
    if batch.plaintext:
        _encrypt_rows(batch, seal)
    audit, end = _chain(batch.events, chain, seal, dialect)
    with connection.begin():
        for table, columns, rows in batch.tables:
            insert_rows(connection, table, columns, rows)
        head = connection.execute(select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == 1)
                            .with_for_update()).one()
        found = (head.seq, bytes(head.hash))
        if found != chain:
            audit, end = _chain(batch.events, found, seal, dialect)
        if audit:
            insert_rows(connection, AuditEvent.__tablename__, _layout(AuditEvent, dialect).columns, audit)
            connection.execute(update(head_table).where(head_table.c.id == 1).values(seq=end[0], hash=end[1]))
    return end, found != chain


def _deduplicate_references(world: _World, batch: _Batch) -> None:
    """Case references are unique: one already stored (by an earlier run with the same seed) is
    drawn again, here and in its CASE_REGISTERED event, until none is taken."""
    rows = batch.rows["asylum_case"]
    clashing = rows
    registered = None
    rng = random.Random()  # noqa: S311 - demo data, not secrets
    while clashing:
        # Read-only: on SQLite a plain BEGIN, so it never waits for (or takes) the write lock.
        with db.engine.connect().execution_options(read_only=True) as conn:
            taken = set(conn.scalars(select(Case.reference).where(
                Case.reference.in_([r["reference"] for r in clashing]))))
        clashing = [r for r in clashing if r["reference"] in taken]
        if clashing and registered is None:
            registered = {e[SUBJECT]: e for e in batch.events if e[CODE] == EventCode.CASE_REGISTERED}
        in_batch = {r["reference"] for r in rows}
        for row in clashing:
            prefix = row["reference"].rsplit("-", 1)[0]
            while row["reference"] in in_batch or not world.references.add(row["reference"]):
                row["reference"] = f"{prefix}-" + "".join(rng.choices(REFERENCE_ALPHABET, k=6))
            in_batch.add(row["reference"])
            event = registered[row["id"]]
            event[DETAILS] = {**event[DETAILS], "reference": row["reference"]}


__all__ = ["GenerationRefused", "GenerationReport", "case_count", "ensure_demo_users", "generate_caseload"]
