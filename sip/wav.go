package sip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// sound is audio ready to play: 8 kHz samples in both G.711 laws.
type sound struct {
	pcmu, pcma []byte
}

func (s *sound) payload(pt uint8) []byte {
	if pt == ptPCMA {
		return s.pcma
	}
	return s.pcmu
}

// maxSoundBytes bounds a WAV file: ten minutes at 8 kHz, 16 bits.
const maxSoundBytes = 10 * 60 * 8000 * 2

// parseWAV reads a RIFF WAVE file of 8 kHz mono 16-bit PCM (what sox or
// any editor writes with "-r 8000 -c 1 -b 16"), the only format played.
func parseWAV(b []byte) (*sound, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF WAVE file")
	}
	var fmtOK bool
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		p += 8
		if size < 0 || size > len(b)-p {
			size = len(b) - p // a truncated last chunk: take what is there
		}
		body := b[p : p+size]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, errors.New("short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(body[0:])
			channels := binary.LittleEndian.Uint16(body[2:])
			rate := binary.LittleEndian.Uint32(body[4:])
			bits := binary.LittleEndian.Uint16(body[14:])
			if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
				return nil, fmt.Errorf("want 8000 Hz mono 16-bit PCM, got format %d, %d channels, %d Hz, %d bits (convert with: sox in.wav -r 8000 -c 1 -b 16 out.wav)", format, channels, rate, bits)
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return nil, errors.New("data before fmt chunk")
			}
			if size > maxSoundBytes {
				return nil, fmt.Errorf("longer than ten minutes")
			}
			n := size / 2
			n -= n % samplesPerPacket // whole packets only
			if n == 0 {
				return nil, errors.New("shorter than one 20 ms packet")
			}
			samples := make([]int16, n)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return &sound{pcmu: encode(ptPCMU, samples), pcma: encode(ptPCMA, samples)}, nil
		}
		p += size + size&1
	}
	return nil, errors.New("no data chunk")
}
