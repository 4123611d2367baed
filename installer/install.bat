@echo off
rem Runs install.py with the Python launcher or python.exe, passing every option on (see install.py --help).
where py >nul 2>nul && goto launcher
where python >nul 2>nul && goto python
echo install.bat: no Python 3 found; install Python 3.10 or newer from python.org, then run this again 1>&2
exit /b 1
:launcher
py -3 "%~dp0install.py" %*
exit /b %errorlevel%
:python
python "%~dp0install.py" %*
exit /b %errorlevel%
