#!/usr/bin/env python3
"""Writes the bundled data-logger samples under samples/loggers (deterministic: seed 25).

Four exports as loggers write them, one per dialect the CSV source reads
(jobs/logger_readings.toml has a source for each):

- gl240/line3-20241027.csv: Shift_JIS, a device preamble, a units row, date and time
  in two columns, Tokyo time, `+OVER`, CRLF;
- eu/press-07_2024-10-27.csv: windows-1252, `;`, decimal commas, `dd.mm.yyyy`
  Berlin time over the night the clocks go back (02:00-02:59 written twice), `---`;
- us/oven-2_2024-03-10.csv: UTF-8, `#` comment lines, a 12-hour clock, Chicago time
  over the night the clocks go forward;
- win/export.txt: UTF-16LE with a byte order mark, tabs, CRLF, ISO-8601 local times
  in Kolkata.

Each file carries a few deliberately bad lines; samples/README.md lists them, and
tests/test_logger_samples.py checks that each lands in logger_rejects with its reason.
Run it again only to change the samples: the files are committed.
"""
import datetime as dt
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parent.parent / "samples" / "loggers"
rng = random.Random(25)


def every(start, minutes, n):
    return [start + dt.timedelta(minutes=minutes * i) for i in range(n)]


def gl240():
    """A Graphtec GL240-style export from a drying oven on a Japanese line: Shift_JIS
    (cp932), CRLF, device information and a blank line before the header, a units row
    after it, the date and the time in two columns (Tokyo time, no DST), `+OVER` when
    a channel is out of range."""
    nl = b"\r\n"

    def enc(text):
        return text.encode("cp932")

    lines = [
        enc('"機種","GL240"'),
        enc('"タイトル","ライン3 乾燥炉"'),
        enc('"開始時刻","2024/10/27 07:00:00"'),
        enc('"サンプリング間隔","10分"'),
        b"",
        enc("No.,日付,時刻,CH1 温度,CH2 湿度,状態"),
        enc(",,,℃,%RH,"),
    ]
    temp, hum = 24.0, 58.0
    for n, t in enumerate(every(dt.datetime(2024, 10, 27, 7, 0), 10, 36), 1):
        # The oven heats to about 80 °C and holds; the air dries as it does.
        temp += (80.0 - temp) * 0.18 + rng.gauss(0, 0.3)
        hum += (22.0 - hum) * 0.12 + rng.gauss(0, 0.4)
        state = "警告" if temp > 79.5 else "正常"
        ch1 = f"{temp:.1f}"
        if n == 22:
            ch1 = "+OVER"  # the thermocouple out of range: a NULL reading
        row = f"{n},{t:%Y/%m/%d},{t:%H:%M:%S},{ch1},{hum:.1f},{state}"
        if n == 27:
            # A lead byte of a two-byte character followed by a comma: not Shift_JIS.
            lines.append(enc(f"{n},{t:%Y/%m/%d},{t:%H:%M:%S},{ch1},") + b"\x82," + enc(state))
        else:
            lines.append(enc(row))
    return nl.join(lines) + nl


def eu_press():
    """A press's logger in a German plant: windows-1252, `;`, decimal commas, two
    preamble lines, Berlin time written as the wall clock shows it. On 27 October
    2024 the clocks go back at 03:00 CEST, so 02:00-02:50 are written twice."""
    walls = every(dt.datetime(2024, 10, 27, 0, 30), 10, 15)      # 00:30 .. 02:50 (summer time)
    walls += every(dt.datetime(2024, 10, 27, 2, 0), 10, 6)       # 02:00 .. 02:50 again (winter time)
    walls += every(dt.datetime(2024, 10, 27, 3, 0), 10, 7)       # 03:00 .. 04:00
    lines = [
        "Messprotokoll Presse 07;Werk Süd",
        "Gerät: DL-200 Datenlogger;Seriennr. 4711",
        "Zeitstempel;Öltemperatur °C;Druck mbar",
    ]
    for n, t in enumerate(walls, 1):
        oil = f"{46.0 + rng.gauss(0, 0.6):.1f}".replace(".", ",")
        druck = f"{6020 + rng.gauss(0, 15):.1f}".replace(".", ",")
        if n == 9:
            druck = "---"  # the pressure sensor dropped out: a NULL reading
        if n == 24:
            druck = "6.012,5"  # thousands grouping (an Excel re-save): rejected, never read as 6.0125
        lines.append(f"{t:%d.%m.%Y %H:%M:%S};{oil};{druck}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def us_oven():
    """A curing oven's export in Illinois: UTF-8, `#` comment lines before the header
    and in the data, a 12-hour clock, Chicago time. On 10 March 2024 the clocks go
    from 1:59:59 AM to 3:00:00 AM."""
    lines = [
        "# Oven 2 temperature log",
        "# Exported 3/10/2024 5:05:12 AM by ThermoTrack 3.2",
        "Date/Time,Zone 1 (°F),Zone 2 (°F)",
    ]
    walls = every(dt.datetime(2024, 3, 9, 23, 0), 10, 18)         # 11:00 PM .. 1:50 AM
    walls += [dt.datetime(2024, 3, 10, 1, 59, 59)]                 # the last second before the change
    walls += [dt.datetime(2024, 3, 10, 2, 30)]                     # did not happen in Chicago
    walls += every(dt.datetime(2024, 3, 10, 3, 0), 10, 13)         # 3:00 AM .. 5:00 AM
    for n, t in enumerate(walls, 1):
        h12 = t.hour % 12 or 12
        stamp = f"{t.month}/{t.day}/{t.year} {h12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"
        z1 = f"{350 + rng.gauss(0, 1.5):.1f}"
        z2 = f"{347 + rng.gauss(0, 1.5):.1f}"
        if n == 28:
            z2 = z2[:-3] + "O" + z2[-2:]  # a letter O for a zero: not a number
        lines.append(f"{stamp},{z1},{z2}")
        if n == 10:
            lines.append("# door opened")
    return ("\n".join(lines) + "\n").encode("utf-8")


def win_export():
    """A Windows tool's export from a CNC mill in India: UTF-16LE with a byte order
    mark (`.encode("utf-16")`), tabs, CRLF, ISO-8601 local times (Asia/Kolkata,
    UTC+05:30), an empty cell where the spindle speed was not read."""
    lines = ["Time\tVibration (mm/s)\tSpindle (rpm)"]
    for n, t in enumerate(every(dt.datetime(2024, 10, 27, 4, 0), 5, 24), 1):
        vib = f"{2.2 + rng.gauss(0, 0.25):.2f}"
        rpm = f"{8000 + rng.randrange(-40, 41)}" if n != 11 else ""
        lines.append(f"{t:%Y-%m-%dT%H:%M:%S}\t{vib}\t{rpm}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-16")


def main():
    files = {
        "gl240/line3-20241027.csv": gl240(),
        "eu/press-07_2024-10-27.csv": eu_press(),
        "us/oven-2_2024-03-10.csv": us_oven(),
        "win/export.txt": win_export(),
    }
    for name, data in files.items():
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    main()
