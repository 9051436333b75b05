package pgcheck

// probeCorpus is the built-in set of strings a collation fingerprint sorts.
// Each group targets a way real collations have changed (or differ between
// C libraries), so that a change in any of them moves at least one pair.
// Every string is distinct, valid UTF-8 and free of NUL (PostgreSQL text
// cannot hold NUL). Baselines store the strings they sorted, so this table
// may grow without invalidating recorded baselines.
var probeCorpus = []string{
	// Punctuation and spaces. glibc 2.28 rewrote iso14651_t1: before it,
	// punctuation and spaces were ignored at the first level
	// (ab < a b < a-b); since, they sort as characters (a b < a-b < ab).
	"ab", "a b", "a-b", "a_b", "a.b", "a,b", "a'b", "a/b", "a+b", "a:b", "a;b", "a!b", "a?b",
	"a~b", "a|b", `a\b`, "a%b", "a=b", "a<b", "a>b", "a^b", "a`b", `a"b`, "a&b", "a*b", "a@b",
	"a#b", "a$b", "a(b)", "a[b]", "a{b}", "abc", "a bc", "ab c", "a-bc", "ab-c", "a b c", "a  b",
	" ab", "ab ", "-ab", "_ab", ".ab", "(ab)", "a\tb", "1-800", "1800", "1 800",
	"", " ", "-", "_", ".", "'", "\t",

	// Hyphens and apostrophes in names: the keys of customer and user
	// tables, where a changed order breaks unique indexes first.
	"O'Brien", "OBrien", "O Brien", "Obrien", "O'Neil", "ONeil", "co-op", "coop", "co op", "Co-op",
	"e-mail", "email", "E-Mail", "Mc Donald", "McDonald", "Mcdonald", "Jean-Luc", "Jean Luc",
	"JeanLuc", "d'Artagnan", "Dartagnan", "van der Berg", "Vanderberg", "van-der-berg",
	"Smith-Jones", "Smith Jones", "SmithJones", "l'été", "lete",

	// Case: libc locales interleave cases (a < A < b); code-point order
	// (C, musl) puts every capital first (A < B < a).
	"a", "A", "b", "B", "m", "M", "z", "Z", "aa", "aA", "Aa", "AA", "Abc", "ABC", "aBc", "ABc",
	"zebra", "Zebra", "apple", "Apple", "APPLE",

	// Accents: secondary weights, and French backward accent ordering.
	"e", "é", "è", "ê", "ë", "E", "É", "È", "resume", "résumé", "Résumé", "resumé", "cote", "côte",
	"coté", "côté", "naïve", "naive", "Zoë", "Zoe", "Ångström", "Angstrom", "ñ", "n", "Ñ", "ç", "c",
	"Ç", "ø", "o", "Ø", "æ", "ae", "Æ", "AE", "œ", "oe", "ı", "i", "İ", "I", "ł", "l", "Ł", "đ",
	"d", "þ", "th", "å", "aa ", "ä", "Ä", "ö", "ü", "u",

	// German sharp s: ß, its capital ẞ (Unicode 5.1) and their expansions.
	"ß", "ss", "SS", "ẞ", "Straße", "Strasse", "STRASSE", "STRAẞE", "strasse", "Maß", "Masse",

	// Digits and numbers: locales sort digit by digit, not numerically;
	// other scripts' digits, fractions and superscripts move between
	// releases of the Unicode tables.
	"0", "1", "2", "9", "10", "11", "100", "1000", "01", "001", "1.5", "1,5", "1 000", "1-2",
	"2a", "a2", "a10", "a9", "item 2", "item 10", "item-2", "v1.10", "v1.9", "½", "¼", "²", "⁹",
	"١٢٣", "٣", "३", "Ⅻ", "XII", "①", "０", "９",

	// Greek and Cyrillic, including final sigma and letters that look Latin.
	"α", "Α", "β", "ω", "Ω", "άλφα", "αλφα", "Αλφα", "σ", "ς", "Σ", "а", "А", "б", "я", "Я", "ё", "е",
	"Ё", "Е", "ж", "і", "ї", "Київ", "Москва", "москва", "Zürich", "Ζυρίχη",

	// CJK, kana and Hangul, with half- and full-width forms.
	"中", "文", "中文", "日本", "日本語", "一", "二", "三", "汉字", "漢字", "ひらがな", "カタカナ",
	"ｶﾀｶﾅ", "ｱ", "ア", "あ", "한국어", "가", "각", "𠀀",

	// Hebrew (with and without niqqud) and Arabic (with a presentation
	// form and the tatweel).
	"א", "ב", "ת", "שלום", "שָׁלוֹם", "ا", "ب", "ي", "سلام", "العربية", "ﻻ", "لا", "عـربي", "عربي",

	// Emoji: sequences, skin tones, flags and variation selectors, which
	// are recent additions to the Unicode collation tables.
	"😀", "😃", "👍", "👍🏽", "🇩🇪", "🇺🇸", "❤", "❤️", "⌚", "😀a", "a😀", "👨‍👩‍👧",

	// Combining marks and look-alikes: precomposed vs decomposed forms,
	// ligatures, full width, invisible and dash-like characters.
	"e\u0301", "n\u0303", "A\u030a", "\u00c5", "\u212b", "\ufb01", "fi", "ｆｕｌｌ", "full",
	"a\u00a0b", "a\u200bb", "a\u00adb", "a\u2010b", "a\u2013b", "a\u2014b", "a\u2019b", "a\u02bcb",
	"\ufffd",

	// Newer Unicode: characters ICU learnt or re-weighted between ICU 60
	// (Unicode 10, CLDR 32) and ICU 72 (Unicode 15, CLDR 42), next to ASCII:
	// emoji of Unicode 14, Cherokee (small letters since Unicode 8), Adlam
	// (Unicode 9), Arabic Extended-A and -B letters. An ICU upgrade moves
	// these and leaves the older scripts above in place.
	"\U0001FAE0", "\U0001FAE1", "a\U0001FAE0", "\U0001FAE0a", "b\U0001FAE1", "\u13A0", "\uAB70", "a\u13A0",
	"\u13A0a", "\uAB70b", "\U0001E900", "\U0001E922", "a\U0001E900", "\U0001E922b", "\u08A0", "\u08B6",
	"\u0870", "a\u08A0", "\u08B6b", "\u0870a", "Z\u0870", "m\U0001E922", "M\uAB70", "z\U0001FAE1",

	// Byte order: what musl (strcmp) does and glibc does not. Capitals,
	// '_' and '~' lie between ranges in ASCII; control characters and
	// high code points sort by their UTF-8 bytes.
	"B_", "B~", "Ba", "_B", "~", "\x01", "a\x01b", "\x7f", "ÿ", "Ā", "ā", "\u0100b", "\uff5e", "~a",
	"aaaaaaaaaaaaaaaaaaaa-b", "aaaaaaaaaaaaaaaaaaaab", "aaaaaaaaaaaaaaaaaaaa b",
}

// ProbeCorpus returns a copy of the built-in probe corpus.
func ProbeCorpus() []string { return append([]string(nil), probeCorpus...) }
