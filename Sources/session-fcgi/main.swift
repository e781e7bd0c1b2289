import Glibc
import SessionApp

exit(CommandLineTool.main(arguments: CommandLine.arguments))
