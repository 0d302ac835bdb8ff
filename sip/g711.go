package sip

// G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8),
// the two codecs every phone and trunk speaks. Audio files are decoded to
// linear samples once and encoded to both laws at load time, so playing
// costs a copy per packet; relaying between a PCMU and a PCMA leg goes
// through the tables below.

const (
	ptPCMU = 0
	ptPCMA = 8
)

func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func uLawToLinear(u byte) int16 {
	u = ^u
	sign := u & 0x80
	exp := int(u>>4) & 7
	mant := int(u & 0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

func linearToALaw(s int16) byte {
	v := int(s)
	sign := 0x80
	if v < 0 {
		v, sign = -v-1, 0
	}
	if v > 32767 {
		v = 32767
	}
	var out int
	if v < 256 {
		out = v >> 4
	} else {
		exp := 1
		for x := v >> 8; x > 1; x >>= 1 {
			exp++
		}
		out = exp<<4 | (v>>(exp+3))&0x0f
	}
	return byte(out|sign) ^ 0x55
}

func aLawToLinear(a byte) int16 {
	a ^= 0x55
	exp := int(a>>4) & 7
	mant := int(a & 0x0f)
	var v int
	if exp == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (exp - 1)
	}
	if a&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}

// transcode tables between the laws, built once.
var uLawToALaw, aLawToULaw [256]byte

func init() {
	for i := range 256 {
		uLawToALaw[i] = linearToALaw(uLawToLinear(byte(i)))
		aLawToULaw[i] = linearToULaw(aLawToLinear(byte(i)))
	}
}

// encode turns linear samples into G.711 of payload type pt.
func encode(pt uint8, samples []int16) []byte {
	out := make([]byte, len(samples))
	for i, s := range samples {
		if pt == ptPCMA {
			out[i] = linearToALaw(s)
		} else {
			out[i] = linearToULaw(s)
		}
	}
	return out
}

// transcode converts a G.711 payload in place from one law to the other.
func transcode(payload []byte, from, to uint8) {
	if from == to {
		return
	}
	table := &uLawToALaw
	if from == ptPCMA {
		table = &aLawToULaw
	}
	for i, b := range payload {
		payload[i] = table[b]
	}
}
